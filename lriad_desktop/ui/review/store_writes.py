"""Writes to the review store from the UI, without the window ever waiting on another program's lock.

A write is tried at once on the UI's own connection, which waits at most `UI_LOCK_WAIT_S` for a
lock (our own inspection worker commits in milliseconds). If the store stays busy — another program
(a second app, a `lriad train`, a backup tool) holds its write lock — the write moves to a background
task (`ui/tasks.py`, lane "store") with its own connection, which waits for the store to be free and
writes everything waiting, in order. The inspector sees a status line while it waits and another once
it is saved; the result reaches the caller's `then` on the UI thread, as if written at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable

from PySide6.QtCore import QObject, Signal

from lriad_desktop.core.store.review_store import BUSY_TIMEOUT_S, ReviewStore, StoreBusy, StoreError
from lriad_desktop.core.plurals import count
from lriad_desktop.ui.tasks import TaskContext, TaskRunner

log = logging.getLogger(__name__)
UI_LOCK_WAIT_S = 0.25  # the longest the UI thread waits for a lock before the write goes to the background
RETRY_WAIT_S = 0.5  # each background attempt waits this long for the lock, then checks for a quit


StoreWork = Callable[[ReviewStore], Any]


@dataclass(frozen=True)
class _Waiting:
    work: StoreWork
    then: Callable[[Any], None]
    what: str
    key: Hashable | None


class StoreWrites(QObject):
    """The UI's store writes: at once when the store is free, else in the background, in order, with a status."""

    notice = Signal(str)  # a status line for the inspector

    def __init__(self, store: ReviewStore, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store, self.runner = store, runner
        store.set_busy_timeout(UI_LOCK_WAIT_S)
        self._waiting: deque[_Waiting] = deque()
        self._lock = threading.Lock()
        self._draining = False
        self._told_busy = False
        self._saved_late = 0

    def write(self, work: StoreWork, then: Callable[[Any], None], what: str, key: Hashable | None = None) -> bool:
        """Run `work(store)`, then `then(result)` on the UI thread. True when written or waiting to be written;
        False (with a notice) when the store refused it, or an earlier write for `key` still waits."""
        if key is not None and self.waits_for(key):
            self.notice.emit(f"{what}: the previous change to it is still waiting for the review store")
            return False
        if not self._waiting:
            try:
                result = work(self.store)
            except StoreBusy:
                pass  # another program holds the store: wait for it in the background
            except StoreError as err:
                self.notice.emit(str(err))
                return False
            else:
                then(result)
                return True
        self._enqueue(_Waiting(work, then, what, key))
        return True

    def waits_for(self, key: Hashable) -> bool:
        """Whether a write for `key` (an image path, …) is waiting for the store."""
        with self._lock:
            return any(w.key == key for w in self._waiting)

    @property
    def waiting(self) -> int:
        """Writes waiting for the store."""
        with self._lock:
            return len(self._waiting)

    def _enqueue(self, item: _Waiting) -> None:
        with self._lock:
            self._waiting.append(item)
            start = not self._draining
            self._draining = True
        if start:
            path = self.store.path
            self.runner.submit(lambda ctx: self._drain(path, ctx), self._drained, lane="store",
                               on_progress=self._delivered)

    def _drain(self, path: Path, ctx: TaskContext) -> None:
        """Worker: write what waits, in order, on a connection of this thread; results go out as progress."""
        with ReviewStore.open(path) as store:
            store.set_busy_timeout(RETRY_WAIT_S)
            quit_by = None
            while True:
                with self._lock:
                    if not self._waiting:
                        self._draining = False
                        return
                    item = self._waiting[0]
                try:
                    result: Any = item.work(store)
                except StoreBusy as err:
                    if ctx.cancelled:  # the app is closing: keep trying a while, then say what is lost
                        quit_by = quit_by or time.monotonic() + BUSY_TIMEOUT_S
                        if time.monotonic() > quit_by:
                            self._give_up(err)
                            return
                    ctx.progress(("busy", str(err)), coalesce=False)
                    continue
                except StoreError as err:
                    result = err
                with self._lock:
                    self._waiting.popleft()
                ctx.progress(("written", item, result), coalesce=False)

    def _give_up(self, err: StoreError) -> None:
        with self._lock:
            lost, self._waiting = list(self._waiting), deque()
            self._draining = False
        log.error("%s: %d change(s) not saved: %s", err, len(lost), "; ".join(w.what for w in lost))

    def _delivered(self, value: tuple) -> None:
        if value[0] == "busy":
            if not self._told_busy:
                self._told_busy = True
                self.notice.emit(f"{value[1]}. Your changes are kept and will be saved as soon as it is free")
            return
        _, item, result = value
        if isinstance(result, StoreError):
            self.notice.emit(f"{item.what}: {result}")
            return
        self._saved_late += 1
        item.then(result)

    def _drained(self, _result: object, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, StoreError):
            raise error
        if error is not None:  # the worker couldn't even open the store: nothing waiting was written
            with self._lock:
                lost, self._waiting = len(self._waiting), deque()
                self._draining = False
            self.notice.emit(f"{error} ({count(lost, 'change')} not saved)")
        elif self._told_busy:
            self.notice.emit(f"The review store is free again: {self._saved_late} waiting {'change' if self._saved_late == 1 else 'changes'} saved")
        self._told_busy, self._saved_late = False, 0
