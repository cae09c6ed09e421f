"""Reconciling training runs with the disk: what a killed or crashed `lriad train` left behind is put right
when the next run starts (`training.recipes.improve`) and when the app starts (`AppController.reconcile_training`).

- a `running` row whose run holds no lock any more (`core.file_locks`) becomes `interrupted`, with why;
- a complete adapter folder the app trained (it has `lriad_training.json`) that no version points at is
  registered as an inactive version, marked recovered; one that is not whole is removed when one of this
  store's runs wrote it (another store's damaged adapter is left alone); a registered version's folder is
  never touched;
- the hidden temp folders of a run that is gone (`.NAME.lriad-tmp-…`: the adapter being saved, the
  trainer's work folder; `.NAME.xxxxxxxx` from earlier versions) are removed, and so are the
  `lriad-grpo-*` work folders earlier versions left in the system temp folder.

Anything whose run still holds its lock (a run in another window or on the command line) is left alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from lriad_desktop.core.backends.engine import validate_adapter_folder
from lriad_desktop.core.backends.model_files import ModelFolderError
from lriad_desktop.core.file_locks import RunLock
from lriad_desktop.core.store.review_store import ReviewStore, TrainingRun, now_iso
from lriad_desktop.core.plurals import count

TEMP_INFIX = ".lriad-tmp-"  # `.NAME.lriad-tmp-…`: a temp folder of the run writing adapter NAME
TRAINING_RECORD = "lriad_training.json"  # written into every adapter this app trains (recipe, steps, base)
EVAL_RECORD = "lriad_eval.json"  # the before/after figures, once the "after" evaluation finished
LEGACY_WORK_PREFIX = "lriad-grpo-"  # work folders in the system temp folder, before they moved beside the adapter
LEGACY_WORK_AGE_S = 24 * 3600  # an old-style work folder is only removed when nothing touched it for a day
_OURS = re.compile(r"^\.(?P<name>.+)" + re.escape(TEMP_INFIX))
_LOCK_FILE = re.compile(r"^\.(?P<name>.+)\.lock$")
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}$")  # tempfile.mkdtemp(prefix=".NAME.")
_ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "README.md", TRAINING_RECORD}


def temp_prefix(out_dir: str | os.PathLike, what: str = "") -> str:
    """The name prefix of a temp folder beside `out_dir` that reconciliation knows as that run's."""
    return f".{Path(out_dir).name}{TEMP_INFIX}{what}"


def run_out_dir(run: TrainingRun) -> Path | None:
    """The adapter folder a run writes (recorded in its config at the start), or None (older rows)."""
    out = run.config.get("out") if isinstance(run.config, dict) else None
    return Path(out) if isinstance(out, str) and out else None


@dataclass(frozen=True)
class Reconciled:
    """What a reconciliation put right."""

    interrupted: tuple[int, ...] = ()  # training run ids now `interrupted`
    recovered: tuple[str, ...] = ()  # adapter folders registered as recovered versions
    removed: tuple[str, ...] = ()  # temp folders and incomplete adapters removed

    def summary(self) -> str:
        """One line for the inspector ("" when nothing was found)."""
        bits = []
        if self.interrupted:
            bits.append(f"{count(len(self.interrupted), 'interrupted training run')} closed")
        if self.recovered:
            bits.append(("recovered adapter " if len(self.recovered) == 1 else "recovered adapters ") + ", ".join(Path(p).name for p in self.recovered)
                        + " (inactive; see Model → Versions)")
        if self.removed:
            bits.append(f"{count(len(self.removed), 'leftover folder')} removed")
        return "; ".join(bits)


def _remove(path: Path, removed: list[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if not path.exists():
        removed.append(str(path))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _temp_owner(entry: Path) -> str | None:
    """The adapter name a hidden temp folder belongs to, or None when it isn't a run's temp folder."""
    if not entry.is_dir() or entry.is_symlink():
        return None
    match = _OURS.match(entry.name)
    if match:
        return match.group("name")
    match = _LEGACY_TEMP.match(entry.name)
    if match and {p.name for p in entry.iterdir()} <= _ADAPTER_FILES:  # an older version's half-saved adapter
        return match.group("name")
    return None


def _same(a: str | os.PathLike | None, b: str | os.PathLike) -> bool:
    return bool(a) and os.path.realpath(a) == os.path.realpath(b)


def _recover(store: ReviewStore, folder: Path, runs: Sequence[TrainingRun], why: str) -> int:
    """Register a complete orphan adapter as an inactive, recovered version; returns its id."""
    record = _read_json(folder / TRAINING_RECORD)
    run = next((r for r in reversed(runs) if _same(run_out_dir(r), folder)), None)
    metrics: dict[str, Any] = {**(run.metrics if run else {}), **_read_json(folder / EVAL_RECORD)}
    metrics.update({k: record[k] for k in ("steps", "minutes", "classes") if k in record and k not in metrics})
    metrics["recovered"] = {"reason": why, "at": now_iso()}
    base = str(record.get("base") or "")
    version = store.add_model_version(folder.name, base, str(folder), run.base_version_id if run else None,
                                      run.data_revision if run else None, metrics)
    if run is not None:
        store.set_training_run_result(run.id, version.id)
    return version.id


def _reconcile_folder(store: ReviewStore, root: Path, runs: Sequence[TrainingRun], when: str,
                      recovered: list[str], removed: list[str]) -> None:
    if not root.is_dir():
        return
    registered = [v.adapter_path for v in store.model_versions() if v.adapter_path]
    entries = sorted(root.iterdir())
    owners: dict[str, list[Path]] = {}
    for entry in entries:
        name = _temp_owner(entry) if entry.name.startswith(".") else None
        if name is not None:
            owners.setdefault(name, []).append(entry)
        elif (lock_file := _LOCK_FILE.match(entry.name)) and entry.is_file():
            owners.setdefault(lock_file.group("name"), [])  # a dead run's lock file: removed with the lock
    orphans = [e for e in entries if not e.name.startswith(".") and e.is_dir() and not e.is_symlink()
               and (e / TRAINING_RECORD).is_file() and not any(_same(r, e) for r in registered)]
    for name in sorted(set(owners) | {o.name for o in orphans}):
        lock = RunLock(root / name)
        try:
            if not lock.acquire():
                continue  # that run is alive: its folders are its own
        except OSError:
            continue  # a folder this program can't write: nothing in it can be cleaned up
        try:
            for temp in owners.get(name, []):
                _remove(temp, removed)
            folder = root / name
            if folder in orphans:
                try:
                    validate_adapter_folder(folder)
                except ModelFolderError:  # not whole: removed only when one of this store's runs wrote it
                    if any(_same(run_out_dir(r), folder) for r in runs):
                        _remove(folder, removed)
                else:
                    _recover(store, folder, runs, f"its training run ended before registering it ({when})")
                    recovered.append(str(folder))
        finally:
            lock.release()


def _run_is_gone(out: Path | None) -> bool:
    """Whether no live process holds the lock of a run that writes `out` (never creating its folder)."""
    if out is None or not out.parent.is_dir():
        return True  # a row from before runs recorded their folder, or a folder that is gone
    lock = RunLock(out)
    try:
        free = lock.acquire()
    except OSError:
        return True  # a folder nobody can write here: no run can be writing into it either
    lock.release()
    return free


def _remove_legacy_work_folders(temp_root: Path, removed: list[str]) -> None:
    try:
        entries = list(temp_root.glob(LEGACY_WORK_PREFIX + "*"))
    except OSError:
        return
    cutoff = time.time() - LEGACY_WORK_AGE_S
    for entry in entries:
        try:
            old = entry.is_dir() and not entry.is_symlink() and entry.stat().st_mtime < cutoff
        except OSError:
            continue
        if old:
            _remove(entry, removed)


def reconcile_training(store: ReviewStore, roots: Iterable[str | os.PathLike] = (), when: str = "",
                       temp_root: str | os.PathLike | None = None) -> Reconciled:
    """Put right what runs that are gone left in `store` and in the adapter folders `roots` (plus the folders
    of the store's stale runs); `when` says in the reasons when it was found ("at the app's start")."""
    when = when or "found later"
    runs = store.training_runs()
    stale = []
    for run in (r for r in runs if r.status == "running"):
        out = run_out_dir(run)
        if _run_is_gone(out):
            stale.append((run, out))
    folders = {Path(p) for p in roots} | {out.parent for _, out in stale if out is not None}
    recovered: list[str] = []
    removed: list[str] = []
    for root in sorted(folders):
        _reconcile_folder(store, root, runs, when, recovered, removed)
    _remove_legacy_work_folders(Path(temp_root) if temp_root is not None else Path(tempfile.gettempdir()), removed)
    interrupted = []
    by_id = {r.id: r for r in store.training_runs()}
    for run, out in stale:
        now = by_id.get(run.id, run)
        reason = "the training process ended without finishing (killed, crashed or the computer stopped); " + when
        if now.result_version_id is not None:
            reason += "; its adapter was saved and is listed as an inactive version"
        store.finish_training_run(run.id, "interrupted", now.result_version_id, {**now.metrics, "reason": reason})
        interrupted.append(run.id)
    return Reconciled(tuple(interrupted), tuple(recovered), tuple(removed))
