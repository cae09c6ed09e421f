"""A hot folder: image files handed over, in the order they landed, once they are complete.

A camera's software saves each frame into a folder; a frame is only ready when its writer is done with it.
`HotFolder` follows the folder with watchdog (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
Windows; `polling=True` for network shares, whose changes made by another machine raise no local events).
A file is handed over when it is complete:
- its name is an image's, and not a temporary one (`frame.png.part`, `.frame.png`, `~frame.png`, `*.tmp`;
  a writer that renames its temporary file into place hands it over at the rename);
- where the platform reports it (Linux), its writer has closed it;
- its size and modification time stayed the same for `settle_s` seconds (an empty file, which a writer
  may fill later, for `empty_grace_s`: then it is handed over, for the watch to say it is empty).
Files already in the folder when it starts (those that landed while nothing watched) come first, oldest
first. Which files were already inspected is not this module's business: `core.line.watch` asks the store.

Threads: watchdog's observer thread only puts raw events on a queue; everything else — the candidates,
their checks, the ordering — happens in the thread that calls `wait`, so no state is shared.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from lriad_desktop.core.inspection.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

DEFAULT_SETTLE_S = 0.5
DEFAULT_EMPTY_GRACE_S = 5.0
TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".filepart", ".swp",
                      ".lock", "~")


class HotFolderError(Exception):
    """The folder can't be watched (missing, not a folder, no permission); the message says why."""


def is_temporary_name(name: str) -> bool:
    """True for names writers use before a file is complete (`.x.png`, `~x.png`, `x.png.part`, `x.tmp`)."""
    lower = name.lower()
    return lower.startswith((".", "~")) or lower.endswith(TEMPORARY_SUFFIXES)


def is_landing_image(path: Path) -> bool:
    """True when `path` names a finished image file by its name (an image suffix, no temporary name)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_temporary_name(path.name)


@dataclass
class _Candidate:
    order: int
    writing: bool  # a writer has it open (only known where the platform reports closes)
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0


class _Events:
    """The observer's handler: raw events onto a queue (runs on watchdog's thread, touches nothing else)."""

    def __init__(self, sink: "queue.SimpleQueue[tuple[str, str, str]]") -> None:
        self._sink = sink

    def dispatch(self, event) -> None:  # noqa: ANN001 - a watchdog FileSystemEvent
        kind = event.event_type
        if event.is_directory:
            kind = "dir_" + kind
        dest = getattr(event, "dest_path", "") or ""
        self._sink.put((kind, os.fsdecode(event.src_path), os.fsdecode(dest)))


class HotFolder:
    """Hands over the complete image files landing in `folder` (and its sub-folders), in landing order.

    `start()` begins watching and takes in the files already there; `wait(timeout)` returns the files that
    became complete (possibly none); `stop()` ends the watch. Paths under `exclude` (a folder the files are
    moved to) are ignored. Use as a context manager to stop on the way out.
    """

    def __init__(self, folder: str | os.PathLike, settle_s: float = DEFAULT_SETTLE_S, recursive: bool = True,
                 exclude: Iterable[str | os.PathLike] = (), polling: bool = False,
                 poll_interval_s: float = 1.0, empty_grace_s: float = DEFAULT_EMPTY_GRACE_S) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.settle_s = max(0.0, settle_s)
        self.empty_grace_s = max(self.settle_s, empty_grace_s)
        self.recursive = recursive
        self.polling = polling
        self.poll_interval_s = poll_interval_s
        self._exclude = tuple(Path(p).expanduser().resolve() for p in exclude)
        self._events: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self._candidates: dict[Path, _Candidate] = {}
        self._order = itertools.count()
        self._observer = None
        self._reports_closes = False

    # --- lifetime ---------------------------------------------------------------------------------------------
    def start(self) -> "HotFolder":
        """Watch the folder (events first, so nothing landing during the scan is missed), then take in the
        files already there, oldest first. Raises `HotFolderError` when the folder can't be watched."""
        if self._observer is not None:
            return self
        if not self.folder.exists():
            raise HotFolderError(f"The folder to watch does not exist: {self.folder}")
        if not self.folder.is_dir():
            raise HotFolderError(f"Not a folder: {self.folder}")
        if not os.access(self.folder, os.R_OK | os.X_OK):
            raise HotFolderError(f"The folder {self.folder} can't be read (permissions)")
        if self.polling:
            from watchdog.observers.polling import PollingObserver

            observer = PollingObserver(timeout=self.poll_interval_s)
        else:
            from watchdog.observers import Observer

            observer = Observer()
        self._reports_closes = type(observer).__name__ == "InotifyObserver"
        try:
            observer.schedule(_Events(self._events), str(self.folder), recursive=self.recursive)
            observer.start()
        except OSError as err:  # inotify watch limit, a folder gone meanwhile
            raise HotFolderError(f"Can't watch {self.folder}: {err.strerror or err}") from None
        self._observer = observer
        self._take_in_existing(self.folder)
        return self

    def stop(self) -> None:
        """Stop watching (the candidates are forgotten; `start` again scans the folder anew)."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        self._candidates.clear()

    def __enter__(self) -> "HotFolder":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def reports_closes(self) -> bool:
        """True where the platform tells when a writer closes a file (Linux inotify)."""
        return self._reports_closes

    @property
    def waiting(self) -> int:
        """Files seen that are not complete yet."""
        return len(self._candidates)

    # --- candidates ----------------------------------------------------------------------------------------
    def _excluded(self, path: Path) -> bool:
        return any(path == ex or ex in path.parents for ex in self._exclude)

    def _wanted(self, path: Path) -> bool:
        if self._excluded(path) or not is_landing_image(path):
            return False
        try:
            rel = path.relative_to(self.folder)
        except ValueError:
            return False
        if not self.recursive and len(rel.parts) > 1:
            return False
        return not any(is_temporary_name(part) for part in rel.parts[:-1])  # no hidden or temporary folders

    def _note(self, path: Path, writing: bool) -> None:
        if not self._wanted(path):
            return
        cand = self._candidates.get(path)
        if cand is None:
            self._candidates[path] = _Candidate(next(self._order), writing and self._reports_closes)
        elif writing and self._reports_closes:
            cand.writing = True

    def _take_in_existing(self, folder: Path) -> None:
        found = []
        walker = folder.rglob("*") if self.recursive else folder.glob("*")
        try:
            for path in walker:
                if self._wanted(path) and path.is_file():
                    try:
                        found.append((path.stat().st_mtime_ns, str(path), path))
                    except OSError:
                        continue
        except OSError as err:
            log.warning("can't list %s: %s", folder, err)
        for _mtime, _name, path in sorted(found):
            self._note(path, writing=False)

    def _apply(self, kind: str, src: str, dest: str) -> None:
        path = Path(src)
        if kind == "created":  # not yet "writing": a file moved in with its folder is created, never written
            self._note(path, writing=False)
        elif kind == "modified":
            self._note(path, writing=True)
        elif kind == "closed":
            self._note(path, writing=False)
            cand = self._candidates.get(path)
            if cand is not None:
                cand.writing = False
        elif kind == "moved":
            self._candidates.pop(path, None)
            self._note(Path(dest), writing=False)  # a rename into place: the writer is done
        elif kind == "deleted":
            self._candidates.pop(path, None)
        elif kind in ("dir_created", "dir_moved") and self.recursive:
            target = Path(dest or src)
            if not self._excluded(target):
                self._take_in_existing(target)  # a folder moved in whole brings its files without their events
        # opened, closed_no_write, attrib: nothing to learn

    def _drain(self, block_s: float) -> None:
        try:
            item = self._events.get(timeout=block_s) if block_s > 0 else self._events.get_nowait()
        except queue.Empty:
            return
        self._apply(*item)
        while True:
            try:
                self._apply(*self._events.get_nowait())
            except queue.Empty:
                return

    def _complete(self, now: float) -> list[Path]:
        ready = []
        for path, cand in list(self._candidates.items()):
            try:
                st = path.stat()
            except OSError:  # gone (moved away, deleted) before it was complete
                self._candidates.pop(path, None)
                continue
            if (st.st_size, st.st_mtime_ns) != (cand.size, cand.mtime_ns):
                cand.size, cand.mtime_ns, cand.stable_since = st.st_size, st.st_mtime_ns, now
                continue
            if cand.writing or now - cand.stable_since < (self.empty_grace_s if st.st_size == 0 else self.settle_s):
                continue
            ready.append((cand.order, path))
        for _order, path in ready:
            del self._candidates[path]
        return [path for _order, path in sorted(ready)]

    def wait(self, timeout_s: float = 1.0) -> list[Path]:
        """The files that became complete, in landing order, waiting up to `timeout_s` for one ([] if none).

        A file handed over is forgotten: written again later, it is handed over again.
        """
        if self._observer is None:
            raise RuntimeError("HotFolder.wait before start")
        deadline = time.monotonic() + max(0.0, timeout_s)
        step = min(0.1, max(0.02, self.settle_s / 4))
        while True:
            now = time.monotonic()
            ready = self._complete(now)
            if ready:
                return ready
            if now >= deadline:
                return []
            self._drain(min(step, deadline - now))
