"""Downloading a model from the Hugging Face hub into the app's models folder, resumably.

The one place the app reaches the network, and only when the user asks for a download. It uses
huggingface_hub's own client: the repo's file list (`HfApi.list_repo_tree`), its resolve URLs and
its streaming GET (`http_get`, which retries a dropped connection from the byte it reached). Only
the files a model folder needs are fetched (`core.models.listing.DOWNLOAD_PATTERNS`). Each file is written
to `<folder>/.lriad-partial/<name>.part` and renamed into place once its size (and, for large
files, its SHA-256) is right, so a Cancel, a crash or a full disk keeps everything received and a
new download carries on from there. Tokens for gated repos come from huggingface_hub's own store
(`hf auth login` or `HF_TOKEN`); this module never reads, prints or logs one.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable, Iterator

from lriad_desktop.core.inspection.families import FAMILIES, SIDECAR, unknown_family_message
from lriad_desktop.core.models.listing import DOWNLOAD_MARKER, DOWNLOAD_PATTERNS, format_bytes
from lriad_desktop.core.paths import models_dir

PARTIAL_DIR = ".lriad-partial"
FINISHED_RECORD = "lriad_download.json"
DOWNLOADS_OFF_ENV = "LRIAD_DOWNLOADS_OFF"  # set by the launcher when the user started it with HF_HUB_OFFLINE=1
SPACE_MARGIN = 256 * 1024 ** 2  # keep this much free beyond the download


class DownloadError(Exception):
    """A download that can't go on; the message says why and what to do, for the user."""


class HubUnreachable(DownloadError):
    """No connection to the hub (or downloads switched off): the message gives the `hf download` command."""


class DownloadCancelled(Exception):
    """The user cancelled; everything received so far is kept for a resume."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None  # known for LFS files (the weights)


@dataclass(frozen=True)
class DownloadPlan:
    """What a download will fetch, from where, to where."""

    repo_id: str
    revision: str  # the commit the files come from
    files: tuple[RemoteFile, ...]
    target: Path
    endpoint: str

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def present_bytes(self) -> int:
        """Bytes already on disk (finished files and partial ones): what a resume does not fetch again."""
        done = 0
        for f in self.files:
            final, part = self.target / f.path, _part_path(self.target, f.path)
            if final.is_file() and final.stat().st_size == f.size:
                done += f.size
            elif part.is_file():
                done += min(part.stat().st_size, f.size)
        return done


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report (bytes are for the whole download, resumed bytes included)."""

    repo_id: str
    file: str
    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    eta_s: float | None

    def text(self) -> str:
        """'1.2 GB of 7.5 GB · 48.0 MB/s · 2 min 11 s left'."""
        bits = [f"{format_bytes(self.done_bytes)} of {format_bytes(self.total_bytes)}"]
        if self.bytes_per_s > 0:
            bits.append(f"{format_bytes(self.bytes_per_s)}/s")
        if self.eta_s is not None:
            minutes, seconds = divmod(int(self.eta_s + 0.5), 60)
            bits.append(f"{minutes} min {seconds} s left" if minutes else f"{seconds} s left")
        return " · ".join(bits)


def default_target(repo_id: str) -> Path:
    """Where a repo is downloaded to: `<app models folder>/<org>--<name>`."""
    return models_dir() / repo_id.replace("/", "--")


def offline_message(repo_id: str, why: str) -> str:
    """The one message for a machine that can't reach the hub: what to run elsewhere, and where to copy."""
    name = repo_id.split("/")[-1]
    return (f"The Hugging Face hub can't be reached from here ({why}). On a machine with internet, run\n"
            f"    hf download {repo_id} --local-dir {name}\n"
            f"then copy the folder {name} to this machine, into {models_dir()} (it is listed at once) or "
            "anywhere else, and choose it with Add Folder… in Model → Models….")


def _hub_endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


_online_lock = threading.Lock()
_online_users = 0


class _RetryChatter(logging.Filter):
    """Drops huggingface_hub's own retry warnings ("Trying to resume download...", "Retrying in 1s"): a dropped
    connection printed a dozen of them before this module's one message, which says what matters."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


_CHATTY_LOGGERS = ("huggingface_hub.file_download", "huggingface_hub.utils._http")
_QUIET = _RetryChatter()


@contextmanager
def _hub_online(repo_id: str) -> Iterator[None]:
    """Let huggingface_hub reach the network for this download. The launcher keeps the hub offline
    for everything else (model loading never downloads); a user who started the app with
    HF_HUB_OFFLINE=1 has switched downloads off, and gets the offline message instead."""
    global _online_users
    from huggingface_hub import constants

    if os.environ.get(DOWNLOADS_OFF_ENV):
        raise HubUnreachable(offline_message(repo_id, "downloads are switched off: HF_HUB_OFFLINE=1"))
    with _online_lock:
        _online_users += 1
        saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = False
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).addFilter(_QUIET)  # adding the same filter twice keeps one
    try:
        yield
    finally:
        with _online_lock:
            _online_users -= 1
            if _online_users == 0:
                constants.HF_HUB_OFFLINE = saved or bool(os.environ.get("HF_HUB_OFFLINE"))
                for name in _CHATTY_LOGGERS:
                    logging.getLogger(name).removeFilter(_QUIET)


def _hub_error(err: BaseException, repo_id: str) -> DownloadError | None:
    """One clear message for what the hub (or the way to it) answered; None for anything else."""
    import httpx2
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    if isinstance(err, GatedRepoError):
        return DownloadError(f"{repo_id} is gated: accept its licence on its Hugging Face page, then log in on "
                             "this machine with `hf auth login` (huggingface_hub keeps the token) and try again")
    if isinstance(err, RepositoryNotFoundError):
        return DownloadError(f"There is no model '{repo_id}' on the hub (or it is private: log in with "
                             "`hf auth login` and try again)")
    if isinstance(err, RevisionNotFoundError):
        return DownloadError(f"{repo_id} has no such revision")
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else "?"
        return DownloadError(f"The hub answered HTTP {status} for {repo_id}; try again later")
    if isinstance(err, (httpx2.ConnectError, httpx2.TimeoutException, httpx2.ProxyError, httpx2.RemoteProtocolError,
                        OfflineModeIsEnabled, ConnectionError)):
        return HubUnreachable(offline_message(repo_id, type(err).__name__.replace("Error", " error").strip()))
    return None


def _disk_error(err: OSError, target: Path) -> DownloadError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(f"The disk holding {target} is full. Everything received so far is kept: free some "
                             "space and download again to carry on from there")
    return DownloadError(f"Can't write {target}: {err.strerror or err}")


def _wanted(path: str) -> bool:
    return "/" not in path and any(fnmatch(path, pattern) for pattern in DOWNLOAD_PATTERNS)


def listed_path_problem(path: object) -> str:
    """Why a path in a hub's file list can't be written under the download folder ("" when it can).

    Refuses what would resolve outside the folder on some system: `..`, a drive (`C:`), a root (`/x`,
    `\\server`), a backslash (a separator on Windows), control characters and empty names."""
    if not isinstance(path, str) or not path.strip():
        return "it names no file"
    if "\\" in path:
        return "it has a backslash"
    if path.startswith("/") or ":" in path:
        return "it names a root or a drive"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return "it has control characters"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "it climbs out of the folder (.. or an empty part)"
    return ""


def _checked_files(repo_id: str, tree: list) -> tuple[RemoteFile, ...]:
    """The files a plan fetches, each listed path and size checked; `DownloadError` for a hostile or broken
    listing, before anything is written."""
    files = []
    for entry in tree:
        path, size = getattr(entry, "path", None), getattr(entry, "size", None)
        name = re.split(r"[\\/]", path)[-1] if isinstance(path, str) else ""
        if isinstance(path, str) and path and not any(fnmatch(name, pattern) for pattern in DOWNLOAD_PATTERNS):
            continue  # never fetched (README images, docs), whatever its path
        problem = listed_path_problem(path)
        if problem:
            raise DownloadError(f"The hub's file list for {repo_id} names {path!r}, which can't be written inside "
                                f"the models folder ({problem}); nothing was downloaded")
        if not _wanted(path):
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise DownloadError(f"The hub's file list for {repo_id} gives no usable size for {path} ({size!r}); "
                                "nothing was downloaded")
        lfs = getattr(entry, "lfs", None)
        files.append(RemoteFile(path, size, lfs.sha256 if lfs else None))
    return tuple(files)


def plan_download(repo_id: str, target: Path | None = None, revision: str = "main",
                  endpoint: str | None = None) -> DownloadPlan:
    """Ask the hub what to fetch: the commit, and the model files with their sizes.

    Refuses a repo without safetensors weights or a config, and (after reading its small
    config.json) a model type outside the family table, before any large file is fetched.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    repo_id = repo_id.strip().strip("/")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise DownloadError(f"'{repo_id}' is not a repo id: give it as ORGANISATION/NAME, "
                            "e.g. Qwen/Qwen3-VL-4B-Instruct")
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise DownloadError(f"'{repo_id}' is not a repo id: names use letters, digits, '-', '_' and '.', no spaces "
                            "(e.g. Qwen/Qwen3-VL-4B-Instruct)") from None
    hub = _hub_endpoint(endpoint)
    target = Path(target) if target is not None else default_target(repo_id)
    with _hub_online(repo_id):
        try:
            api = HfApi(endpoint=hub)
            sha = api.model_info(repo_id, revision=revision).sha or revision
            tree = [f for f in api.list_repo_tree(repo_id, revision=sha, recursive=True) if isinstance(f, RepoFile)]
            files = _checked_files(repo_id, tree)
            has_config = any(f.path == "config.json" for f in tree)
            config = _fetch_small(repo_id, "config.json", sha, hub) if has_config else None
        except DownloadError:
            raise
        except (KeyError, TypeError, AttributeError):  # an entry without a path, size or id
            raise DownloadError(f"The hub's file list for {repo_id} can't be read (an entry lacks its path or "
                                "size); nothing was downloaded") from None
        except Exception as err:  # the hub's answers and network failures become one message
            mapped = _hub_error(err, repo_id)
            if mapped is None:
                raise
            raise mapped from None
    if config is None or not any(f.path.endswith(".safetensors") for f in files):
        raise DownloadError(f"{repo_id} has no config.json and safetensors weights: it is not a model folder this "
                            "app can load")
    try:
        model_type = str(json.loads(config).get("model_type", ""))
    except (ValueError, AttributeError):
        raise DownloadError(f"{repo_id}'s config.json can't be read") from None
    if model_type not in FAMILIES and not any(f.path == SIDECAR for f in files):
        raise DownloadError(unknown_family_message(model_type, repo_id))
    return DownloadPlan(repo_id, sha, tuple(sorted(files, key=lambda f: f.size)), target, hub)


def _fetch_small(repo_id: str, filename: str, revision: str, endpoint: str) -> bytes:
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    buffer = io.BytesIO()
    http_get(hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint), buffer,
             headers=build_hf_headers(), tqdm_class=_Quiet)
    return buffer.getvalue()


def check_disk_space(plan: DownloadPlan) -> None:
    """Refuse to start when the disk can't hold what is still to come (plus a margin)."""
    need = plan.total_bytes - plan.present_bytes()
    folder = plan.target
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if need + SPACE_MARGIN > free:
        raise DownloadError(f"{plan.repo_id} needs {format_bytes(need)} more, and the disk holding {plan.target} has "
                            f"{format_bytes(free)} free: free some space or download to another folder")


class _Quiet:
    """A progress bar that shows nothing (progress is reported through the file written to)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> "_Quiet":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int | float | None = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _CountingFile(io.RawIOBase):
    """The `.part` file http_get writes to: counts bytes for progress and stops on Cancel."""

    def __init__(self, fh, on_bytes: Callable[[int], None], cancelled: Callable[[], bool]) -> None:
        super().__init__()
        self._fh, self._on_bytes, self._cancelled = fh, on_bytes, cancelled

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._cancelled():
            raise DownloadCancelled()
        n = self._fh.write(data)
        self._on_bytes(len(data))
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def truncate(self, size: int | None = None) -> int:  # http_get truncates when a server ignores Range
        before = os.fstat(self._fh.fileno()).st_size
        result = self._fh.truncate(size)
        self._on_bytes(result - before)
        return result


def _part_path(target: Path, name: str) -> Path:
    return target / PARTIAL_DIR / f"{name}.part"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def run_download(plan: DownloadPlan, on_progress: Callable[[DownloadProgress], None] | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Path:
    """Fetch what the plan lists into `plan.target`, carrying on from anything already there.

    Raises `DownloadCancelled` (progress kept), `HubUnreachable`, or `DownloadError` with one message.
    """
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    target = plan.target
    for remote in plan.files:  # a plan built elsewhere gets the same check as the hub's listing
        problem = listed_path_problem(remote.path)
        if problem:
            raise DownloadError(f"{remote.path!r} can't be written inside the models folder ({problem}); "
                                "nothing was downloaded")
    try:
        (target / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)
        (target / DOWNLOAD_MARKER).write_text(json.dumps(
            {"repo_id": plan.repo_id, "revision": plan.revision, "endpoint": plan.endpoint}, indent=2))
    except OSError as err:
        raise _disk_error(err, target) from None
    total = plan.total_bytes
    start_done = plan.present_bytes()
    state = {"done": start_done, "file": "", "last": 0.0}
    t0 = time.monotonic()

    def report(n: int, force: bool = False) -> None:
        state["done"] += n
        now = time.monotonic()
        if on_progress is None or (not force and now - state["last"] < 0.2):
            return
        state["last"] = now
        rate = (state["done"] - start_done) / max(now - t0, 1e-6)
        eta = (total - state["done"]) / rate if rate > 0 else None
        on_progress(DownloadProgress(plan.repo_id, state["file"], min(state["done"], total), total, rate, eta))

    report(0, force=True)
    headers = build_hf_headers()  # adds the token from huggingface_hub's store, if there is one
    with _hub_online(plan.repo_id):
        for remote in plan.files:
            final, part = target / remote.path, _part_path(target, remote.path)
            if final.is_file() and final.stat().st_size == remote.size:
                continue
            if cancelled():
                raise DownloadCancelled()
            state["file"] = remote.path
            try:
                have = part.stat().st_size if part.is_file() else 0
                if have > remote.size:  # a different file was here: start it again
                    part.unlink()
                    state["done"] -= have
                    have = 0
                with open(part, "ab") as fh:
                    sink = _CountingFile(fh, report, cancelled)
                    http_get(hf_hub_url(plan.repo_id, remote.path, revision=plan.revision, endpoint=plan.endpoint),
                             sink, resume_size=have, headers=headers, expected_size=remote.size,
                             displayed_filename=remote.path, tqdm_class=_Quiet)
                if remote.sha256 and _sha256(part) != remote.sha256:
                    part.unlink()
                    raise DownloadError(f"{remote.path} arrived damaged (its SHA-256 does not match the hub's); "
                                        "it was removed: download again")
                os.replace(part, final)
            except (DownloadCancelled, DownloadError):
                raise
            except Exception as err:
                mapped = _hub_error(err, plan.repo_id)
                if isinstance(mapped, HubUnreachable):  # the plan reached it: the connection was lost since
                    raise DownloadError(f"The connection to the hub was lost while downloading {remote.path}; "
                                        "everything received so far is kept: download again to carry on from "
                                        "there") from None
                if mapped is not None:
                    raise mapped from None
                if isinstance(err, OSError) and err.errno is None:  # http_get's size check after a cut-off
                    raise DownloadError(f"{remote.path} did not arrive whole; download again to carry on "
                                        "from what was received") from None
                if isinstance(err, OSError):
                    raise _disk_error(err, target) from None
                raise
    report(0, force=True)
    try:
        shutil.rmtree(target / PARTIAL_DIR, ignore_errors=True)
        os.replace(target / DOWNLOAD_MARKER, target / FINISHED_RECORD)
    except OSError as err:
        raise _disk_error(err, target) from None
    return target


def download_model(repo_id: str, target: Path | None = None,
                   on_progress: Callable[[DownloadProgress], None] | None = None,
                   cancelled: Callable[[], bool] = lambda: False, endpoint: str | None = None) -> Path:
    """Plan, check the disk, fetch: the folder of a finished download (`plan_download`, `run_download`)."""
    plan = plan_download(repo_id, target, endpoint=endpoint)
    check_disk_space(plan)
    return run_download(plan, on_progress, cancelled)
