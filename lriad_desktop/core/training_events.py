""""Improve model" as the app sees it, without Qt: the `lriad train` command line, its JSON events
folded into one progress value, before/after comparisons, and choices among model versions.

The app never imports `training`; it starts `lriad train` as a separate process and reads the
events it prints (one JSON object per line). Everything here is plain data so it is tested
without a window.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from lriad_desktop.core.paths import BUNDLED_MODEL_NAME, bundled_model_dir, user_data_dir
from lriad_desktop.core.store import ModelVersion, ReviewStore

RECIPE_ENV = "LRIAD_TRAIN_RECIPE"  # a JSON recipe ({"preset": …, overrides}) for every run of this app
EXIT_DONE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 3
COMPARED: tuple[tuple[str, str], ...] = (("accuracy", "Accuracy"), ("f1", "F1"), ("mean_iou", "Mean IoU"))
SPLITS: tuple[tuple[str, str], ...] = (("flagged", "Flagged"), ("holdout", "Held out"))


# --- the command line -------------------------------------------------------------------------
def adapters_dir() -> Path:
    """Where the app keeps the adapters it trains (`user_data_dir()/adapters`)."""
    return user_data_dir() / "adapters"


def next_adapter_dir(root: Path, base_name: str, taken: Iterable[str] = ()) -> Path:
    """`root/<base_name>-vN` for the first N ≥ 1 that is neither a folder there nor a name in `taken`
    (a discarded version keeps its name in the store, so its folder name is never reused)."""
    used = set(taken)
    pattern = re.compile(rf"^{re.escape(base_name)}-v(\d+)$")
    numbers = [int(m.group(1)) for name in used if (m := pattern.match(name))]
    if root.is_dir():
        numbers += [int(m.group(1)) for p in root.iterdir() if (m := pattern.match(p.name))]
    n = max(numbers, default=0) + 1
    return root / f"{base_name}-v{n}"


def recipe_from_env() -> dict[str, Any] | None:
    """The recipe override in `LRIAD_TRAIN_RECIPE`, or None (then `lriad train` picks its preset)."""
    text = os.environ.get(RECIPE_ENV, "").strip()
    if not text:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{RECIPE_ENV} must hold a JSON object")
    return value


def train_command(db: Path, base: Path, out: Path, adapter_from: Path | None = None,
                  recipe: dict[str, Any] | None = None, device: str | None = None) -> list[str]:
    """The `lriad train` command for this app: `python -m lriad_desktop train …`, or the frozen app
    re-launched with `train …` (a frozen build has no separate Python)."""
    if getattr(sys, "frozen", False):
        head = [sys.executable, "train"]
    else:
        head = [sys.executable, "-m", "lriad_desktop", "train"]
    # --stop-with-parent: the run cancels itself if the app dies (its stdin pipe from the app closes).
    args = ["--db", str(db), "--base", str(base), "--out", str(out), "--events", "jsonl", "--stop-with-parent"]
    if adapter_from is not None:
        args += ["--adapter-from", str(adapter_from)]
    if recipe:
        args += ["--recipe-json", json.dumps(recipe)]
    if device and device != "auto":
        args += ["--device", device]
    return head + args


def parse_event(line: str) -> dict[str, Any] | None:
    """One protocol event from a stdout line; None for anything else (a library's stray print)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("event"), str) else None


# --- progress -----------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def format_metric(name: str, value: float | None) -> str:
    """A metric as people read it: accuracy in percent, the others with two decimals."""
    return _pct(value) if name == "accuracy" else _num(value)


def format_duration(seconds: float) -> str:
    """'40 s', '3 min', '1 h 5 min'."""
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def scores_summary(scores: dict[str, Any]) -> str:
    """'acc 67% · F1 0.80 · IoU 0.41 (n 12)' for a scores dict."""
    if not scores:
        return "no images"
    return (f"acc {_pct(scores.get('accuracy'))} · F1 {_num(scores.get('f1'))} · "
            f"IoU {_num(scores.get('mean_iou'))} (n {scores.get('n', 0)})")


@dataclass
class TrainingProgress:
    """Everything the events of one run said so far; `apply` folds in the next event."""

    phase: str = "starting"  # starting, evaluating, training, saving, done, cancelled, failed
    step: int = 0
    max_steps: int = 0
    eta_s: float | None = None
    s_per_step: float | None = None
    rewards: list[float] = field(default_factory=list)
    kls: list[float] = field(default_factory=list)
    reward_parts: dict[str, float] = field(default_factory=dict)
    classes: dict[str, dict[str, float]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    version_id: int | None = None
    adapter: str = ""
    minutes: float | None = None
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "cancelled", "failed")

    def apply(self, event: dict[str, Any]) -> str:
        """Fold one event in; returns a line for the run's log."""
        kind = event.get("event")
        if kind == "data":
            self.phase = "evaluating"
            self.data = dict(event)
            skipped = event.get("skipped") or 0
            skipped = len(skipped) if isinstance(skipped, list) else int(skipped)
            extra = f", {skipped} unreadable skipped" if skipped else ""
            return (f"Data: {event.get('flagged', 0)} flagged, {event.get('replay', 0)} replayed, "
                    f"{event.get('holdout', 0)} held out → {event.get('rows', 0)} training rows{extra}")
        if kind == "eval":
            when = event.get("when", "")
            scores = {k: event.get(k) or {} for k, _ in SPLITS}
            if when == "before":
                self.before = scores
            else:
                self.after = scores
                self.phase = "saving"
            return (f"{when.capitalize()}: flagged {scores_summary(scores['flagged'].get('all', {}))}; "
                    f"held out {scores_summary(scores['holdout'].get('all', {}))}")
        if kind == "setup":
            self.phase = "training"
            self.max_steps = int(event.get("max_steps", 0) or 0)
            start = Path(event["adapter_from"]).name if event.get("adapter_from") else "the base model"
            return f"Training from {start}: {event.get('rows', 0)} rows, {self.max_steps} steps"
        if kind == "step":
            self.phase = "training"
            self.step = int(event.get("step", 0))
            self.max_steps = int(event.get("max_steps", self.max_steps) or self.max_steps)
            self.eta_s = event.get("eta_s")
            self.s_per_step = event.get("s_per_step")
            self.rewards.append(float(event.get("reward", 0.0)))
            self.kls.append(float(event.get("kl", 0.0)))
            self.reward_parts = dict(event.get("rewards") or {})
            self.classes = dict(event.get("classes") or self.classes)
            return (f"Step {self.step}/{self.max_steps} · reward {self.rewards[-1]:.3f} · KL {self.kls[-1]:.4f} · "
                    f"{self.s_per_step or 0:.1f} s/step")
        if kind == "saved":
            self.phase = "evaluating"
            self.classes = dict(event.get("classes") or self.classes)
            return f"Adapter saved to {event.get('adapter', '')}; evaluating it"
        if kind == "done":
            self.phase = "done"
            self.version_id = event.get("version_id")
            self.adapter = str(event.get("adapter", ""))
            self.minutes = event.get("minutes")
            return f"Done in {format_duration((self.minutes or 0) * 60)}: new version {Path(self.adapter).name}"
        if kind == "cancelled":
            self.phase = "cancelled"
            return "Cancelled: the active model is unchanged"
        if kind == "error":
            self.phase = "failed"
            self.error = str(event.get("message", "unknown error"))
            return f"Error: {self.error}"
        return json.dumps(event)

    def status_text(self) -> str:
        """One line for the progress bar."""
        if self.phase == "training" and self.max_steps:
            eta = f" · about {format_duration(self.eta_s)} left" if self.eta_s else ""
            return f"Step {self.step} / {self.max_steps}{eta}"
        return {"starting": "Starting…", "evaluating": "Evaluating before training…" if not self.rewards
                else "Evaluating the new adapter…", "saving": "Registering the new version…",
                "done": "Finished", "cancelled": "Cancelled", "failed": "Failed"}.get(self.phase, self.phase)


# --- before / after ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricChange:
    name: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    def text(self) -> str:
        return f"{format_metric(self.name, self.before)} → {format_metric(self.name, self.after)}"


@dataclass(frozen=True)
class ComparisonRow:
    """One line of the before/after table: a split (flagged / held out) and a defect class (or 'all')."""

    split: str
    defect_class: str
    n: int
    changes: tuple[MetricChange, ...]


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[ComparisonRow]:
    """Rows for each split: 'all' first, then the classes alphabetically."""
    rows = []
    for key, title in SPLITS:
        b, a = before.get(key) or {}, after.get(key) or {}
        classes = sorted(set(b) | set(a), key=lambda c: (c != "all", c))
        for cls in classes:
            sb, sa = b.get(cls) or {}, a.get(cls) or {}
            changes = tuple(MetricChange(m, sb.get(m), sa.get(m)) for m, _ in COMPARED)
            rows.append(ComparisonRow(title, cls, int(sa.get("n", sb.get("n", 0)) or 0), changes))
    return rows


# --- model versions -------------------------------------------------------------------------------
def is_available(version: ModelVersion) -> bool:
    """A version can be activated: its base folder can be found and its adapter (if any) still exists."""
    adapter_ok = version.adapter_path is None or Path(version.adapter_path).is_dir()
    return adapter_ok and resolve_base(version.base_path).is_dir()


def resolve_base(base_path: str) -> Path:
    """The base folder of a version; the bundled model wherever this copy of the app keeps it."""
    path = Path(base_path)
    if not path.is_dir() and path.name == BUNDLED_MODEL_NAME:
        return bundled_model_dir()
    return path


def _same_path(a: str | None, b: str | os.PathLike | None) -> bool:
    if not a or not b:
        return not a and not b
    return os.path.realpath(a) == os.path.realpath(b)


def find_version(versions: Sequence[ModelVersion], base: Path, adapter: Path | None) -> ModelVersion | None:
    """The newest registered version with this base folder and adapter."""
    for v in reversed(versions):
        if _same_path(str(resolve_base(v.base_path)), base) and _same_path(v.adapter_path, adapter):
            return v
    return None


def sync_active_version(store: ReviewStore, base: Path, adapter: Path | None) -> ModelVersion:
    """Make the model the settings point at the store's active version, registering it on first use
    (the bundled or chosen base model becomes a version like any adapter)."""
    version = find_version(store.model_versions(), base, adapter)
    if version is None:
        name = adapter.name if adapter is not None else base.name
        version = store.add_model_version(name, str(base), str(adapter) if adapter else None)
    active = store.active_model_version()
    if active is None or active.id != version.id:
        store.activate_model_version(version.id)
    return next(v for v in store.model_versions() if v.id == version.id)


def rollback_target(versions: Sequence[ModelVersion], active: ModelVersion | None) -> ModelVersion | None:
    """What "Roll back" activates: the active version's parent, else the newest older usable version."""
    if active is None:
        return None
    by_id = {v.id: v for v in versions}
    parent = by_id.get(active.parent_id) if active.parent_id is not None else None
    if parent is not None and is_available(parent):
        return parent
    older = [v for v in versions if v.id < active.id and is_available(v)]
    return older[-1] if older else None


def key_metrics(version: ModelVersion) -> str:
    """'flagged F1 0.20 → 0.65 · held out F1 0.90 → 0.91' from a version's metrics (or '')."""
    before, after = version.metrics.get("before") or {}, version.metrics.get("after") or {}
    bits = []
    for key, title in SPLITS:
        b = ((before.get(key) or {}).get("all") or {}).get("f1")
        a = ((after.get(key) or {}).get("all") or {}).get("f1")
        if a is not None:
            bits.append(f"{title.lower()} F1 {_num(b)} → {_num(a)}")
    return " · ".join(bits)
