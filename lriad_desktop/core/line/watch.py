"""Watching a folder on the line: each image that lands is inspected once, recorded, published and moved.

`FolderWatch.run` is `lriad watch`: the hot folder (`core.line.hot_folder`) hands over complete files in landing
order; those the review store already holds an inspection of — same content hash, same path — are not
inspected again (so a restart picks up what landed while it was down, and nothing twice); the rest go through
the one inspection pipeline (`core.backends.pipeline`, any backend, tiles included), each finding is recorded in the
store as the app records it, published (`core.line.publishing`) and, with a done folder, moved there (the store
follows the move). The app's watch mode (`ui.line.watch_mode`) uses the same hot folder and its own inspection
service; its queue keeps the findings the store already holds, so it too inspects nothing twice.

Order of the steps for one image: inspect, record, move, publish. A crash after recording leaves the file
in place and inspected: the next start moves it without inspecting it again. A file that can't be inspected
(unreadable, empty, not an image) gets one error line and a row in the line journal (`core.line.journal`).
One watch per folder: an OS lock (`.lriad-watch.lock` in the folder, or in the data folder when the folder is
read-only) refuses a second one, which would inspect and publish every image twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.line.hot_folder import DEFAULT_SETTLE_S, HotFolder, HotFolderError
from lriad_desktop.core.line.journal import JournalError, LineJournal
from lriad_desktop.core.paths import user_data_dir
from lriad_desktop.core.backends.pipeline import InspectionBackend, InspectionRequest, inspect_requests
from lriad_desktop.core.inspection.prompting import guess_object_name
from lriad_desktop.core.line.publishing import FindingPublisher
from lriad_desktop.core.file_locks import RunLock
from lriad_desktop.core.store.review_store import ReviewStore, StoreError, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Landed:
    """A complete file, hashed: its identity in the store is (sha256, path)."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class WatchedImage:
    """What watching did with one landed file: inspected (a finding or an error) or skipped, and where it is."""

    path: str
    finding: Finding | None = None
    error: str = ""
    skipped: str = ""  # why it was not inspected ("already inspected")
    moved_to: str = ""
    inspection_id: int | None = None
    store_error: str = ""

    @property
    def where(self) -> str:
        """Where the image is now."""
        return self.moved_to or self.path


def triage(store: ReviewStore, paths: Iterable[Path]) -> tuple[list[Landed], list[Landed]]:
    """Split complete files into (new, already inspected) by the store's identity, content hash + path.

    A file that vanished before it could be hashed is left out of both.
    """
    new: list[Landed] = []
    seen: list[Landed] = []
    for path in paths:
        resolved = Path(path).resolve()
        try:
            digest = file_sha256(resolved)
        except OSError:
            continue
        state = store.lookup_paths([str(resolved)]).get(str(resolved))
        done = state is not None and state.image.sha256 == digest and state.finding is not None
        (seen if done else new).append(Landed(resolved, digest))
    return new, seen


def unreadable_reason(path: Path) -> str:
    """Why a landed file can't be read ("" when it can, or when it is gone: nothing to say then)."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except FileNotFoundError:
        return ""
    except PermissionError:
        return "can't be read (permission denied): fix its permissions and land it again"
    except OSError as err:
        return f"can't be read ({err.strerror or err})"
    return ""


def move_to_problem(folder: Path, move_to: Path) -> str:
    """Why `move_to` can't take the images watched in `folder` ("" when it can): the folder itself or one
    above it would be excluded from the watch together with everything in it."""
    if move_to == folder:
        return f"--move-to {move_to} is the watched folder itself: choose a folder outside it"
    if move_to in folder.parents:
        return f"--move-to {move_to} holds the watched folder {folder}: choose a folder beside it, not above it"
    return ""


def folder_lock(folder: Path) -> RunLock:
    """The OS lock of one watched folder: `.lriad-watch.lock` in it, or in the data folder when it is read-only."""
    lock = RunLock(folder / "lriad-watch")
    if os.access(folder, os.W_OK):
        return lock
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return RunLock(user_data_dir() / "watch-locks" / digest)


@contextmanager
def watching(folder: Path) -> Iterator[None]:
    """Hold `folder`'s watch lock for the `with` block: one watch a folder, whether `lriad watch` or the app's
    *Watch Folder*. Raises `HotFolderError` when another holds it or it can't be taken."""
    lock = folder_lock(folder) if folder.is_dir() else None
    try:
        if lock is not None and not lock.acquire():
            raise HotFolderError(f"Another watch (lriad watch or the app's Watch Folder) is already watching {folder}: "
                                 "two would inspect and publish every image twice (stop the other one first)")
    except OSError as err:
        raise HotFolderError(f"Can't lock {folder} for this watch: {err.strerror or err}") from None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def move_into(path: Path, watched: Path, done: Path) -> Path:
    """Move `path` (under `watched`) to the same relative place under `done`; never overwrites: a name
    already taken there gets `-1`, `-2`, … Returns the new path; raises OSError."""
    try:
        rel = path.relative_to(watched)
    except ValueError:
        rel = Path(path.name)
    target = done / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    while target.exists():
        n += 1
        target = target.with_name(f"{Path(rel.name).stem}-{n}{path.suffix}")
    shutil.move(str(path), str(target))
    return target


class FolderWatch:
    """Inspect the images landing in a folder until told to stop (`lriad watch`).

    `on_image(WatchedImage)` is called once per landed file, in landing order; `on_note(str)` with lines for
    the inspector (the broker is gone, a move failed). Both run on the caller's thread.
    """

    def __init__(self, backend: InspectionBackend, store_path: str | os.PathLike, folder: str | os.PathLike,
                 *, object_name: str | None = None, move_to: str | os.PathLike | None = None,
                 publisher: FindingPublisher | None = None, settle_s: float = DEFAULT_SETTLE_S,
                 polling: bool = False, batch_size: int = 4, journal: LineJournal | None = None) -> None:
        self.backend = backend
        self.store_path = Path(store_path)
        self.folder = Path(folder).expanduser().resolve()
        self.object_name = object_name
        self.move_to = Path(move_to).expanduser().resolve() if move_to else None
        problem = move_to_problem(self.folder, self.move_to) if self.move_to else ""
        if problem:
            raise HotFolderError(problem)
        self.publisher = publisher
        self.journal = journal
        self.batch_size = batch_size
        self.hot_folder = HotFolder(self.folder, settle_s=settle_s, polling=polling,
                                    exclude=[self.move_to] if self.move_to else ())

    def run(self, on_image: Callable[[WatchedImage], None], on_note: Callable[[str], None] = lambda _line: None,
            should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.25) -> int:
        """Watch until `should_stop()` (checked about every `poll_s`) or an interrupt; returns how many images
        were inspected. Takes the folder's lock, then loads the backend (their errors are raised before anything
        is watched)."""
        with watching(self.folder):
            return self._run_locked(on_image, on_note, should_stop, poll_s)

    def _run_locked(self, on_image: Callable[[WatchedImage], None], on_note: Callable[[str], None],
                    should_stop: Callable[[], bool], poll_s: float) -> int:
        if self.publisher is not None:
            self.publisher.start()  # under the lock: what an earlier watch of this folder left unsent goes first
        self.backend.load()
        inspected = 0
        store = ReviewStore.open(self.store_path, durable=False)  # an inspection can be redone; a review can't
        try:
            with self.hot_folder:
                on_note(f"watching {self.folder} (Ctrl+C stops)"
                        + (f"; moving inspected images to {self.move_to}" if self.move_to else ""))
                while not should_stop():
                    ready = self.hot_folder.wait(poll_s)
                    self._say_notes(on_note)
                    if ready:
                        inspected += self._handle(store, ready, on_image, on_note)
        finally:
            store.close()
            self._say_notes(on_note)
        return inspected

    def _say_notes(self, on_note: Callable[[str], None]) -> None:
        if self.publisher is not None:
            for line in self.publisher.notes():
                on_note(line)

    def _object_for(self, store: ReviewStore, path: Path) -> str:
        return self.object_name or store.object_name_for(path) or guess_object_name(path)

    def _handle(self, store: ReviewStore, ready: Sequence[Path], on_image: Callable[[WatchedImage], None],
                on_note: Callable[[str], None]) -> int:
        readable = []
        for path in ready:
            problem = unreadable_reason(path)
            if problem:
                self._failed(path, problem, on_image, on_note)
            else:
                readable.append(path)
        new, seen = triage(store, readable)
        for item in seen:  # inspected before a restart; perhaps not moved yet
            on_image(WatchedImage(str(item.path), skipped="already inspected",
                                  moved_to=self._move(store, item, None, on_note)))
        requests = [InspectionRequest(str(item.path), self._object_for(store, item.path), tag=item) for item in new]
        count = 0
        for result in inspect_requests(self.backend, requests, self.batch_size):
            item: Landed = result.request.tag
            if result.finding is None:
                self._failed(item.path, result.error, on_image, on_note)
                continue
            count += 1
            image_id = inspection_id = None
            store_error = created = ""
            try:
                image = store.add_image(item.path, result.request.object_name, sha256=item.sha256)
                record = store.record_inspection(image.id, result.finding)
                image_id, inspection_id, created = image.id, record.id, record.created_at
            except StoreError as err:
                store_error = str(err)
                on_note(f"error: {err}")
            moved = self._move(store, item, image_id, on_note)
            if self.publisher is not None:
                self.publisher.publish(result.finding, moved or str(item.path), created)
            on_image(WatchedImage(str(item.path), result.finding, moved_to=moved, inspection_id=inspection_id,
                                  store_error=store_error))
        return count

    def _failed(self, path: Path, error: str, on_image: Callable[[WatchedImage], None],
                on_note: Callable[[str], None]) -> None:
        """A landed file that could not be inspected: on record in the journal, and said once."""
        if self.journal is not None:
            try:
                self.journal.record_error(str(path), error)
            except JournalError as err:
                on_note(f"error: {err}")
        on_image(WatchedImage(str(path), error=error))

    def _move(self, store: ReviewStore, item: Landed, image_id: int | None, on_note: Callable[[str], None]) -> str:
        if self.move_to is None:
            return ""
        try:
            target = move_into(item.path, self.folder, self.move_to)
        except OSError as err:
            on_note(f"error: can't move {item.path} to {self.move_to}: {err.strerror or err}; it stays where it is")
            return ""
        try:
            if image_id is None:
                state = store.lookup_paths([str(item.path)]).get(str(item.path))
                image_id = state.image.id if state is not None and state.image.sha256 == item.sha256 else None
            if image_id is not None:
                store.move_image(image_id, target)
        except StoreError as err:
            on_note(f"error: {err}")
        return str(target)
