"""The one way to run work off the UI thread (like Picard's `util/thread.py`, Anki's `taskman`).

`TaskRunner.submit(fn, on_done, lane=…, on_progress=…)` runs `fn(ctx)` on a worker thread
of a lane and calls `on_done(result, error)` on the main thread. `fn` may report progress
with `ctx.progress(value)`; values reach `on_progress` on the main thread (by default only
the newest one, so a fast producer — a camera — can't flood the UI). `fn` never touches a
widget. Lanes: "model" (one thread: all model loading and inference, in order), "io"
(decoding, thumbnails, folder scans, exports), "capture" (long camera loops) and "store" (one
thread: review-store writes that wait for another program's lock, in order).

On quit (`shutdown`) every task is cancelled; the lanes that write ("store", "io": reviews, exports,
reports, snapshots) are waited for to their end, the others ("model", "capture": a call deep in torch or a
camera) at most `QUIT_WAIT_S`. `left_running` then says whether one is still under way: the process can
leave without it (`ui.window.app`), since nothing it does is a write the inspector would lose.
"""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait as wait_for
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)

LANES: dict[str, int] = {"model": 1, "io": 2, "capture": 1, "store": 1}
WRITING_LANES = frozenset({"store", "io"})  # a quit waits for these to the end
KEPT_ON_QUIT = frozenset({"store"})  # and runs these even when still queued: they hold the reviews
QUIT_WAIT_S = 0.5  # and for a model call or a camera loop at most this long
_LATEST = object()


class TaskCancelled(Exception):
    """Raised inside a task by `ctx.check()` once the task was cancelled."""


class TaskContext:
    """What a running task sees: cancellation, pause and a way to report progress."""

    def __init__(self, emit: Callable[[Any, bool], None]) -> None:
        self._emit = emit
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise `TaskCancelled` if the task was cancelled; block while it is paused."""
        self._running.wait()
        if self._cancel.is_set():
            raise TaskCancelled()

    def progress(self, value: Any, coalesce: bool = True) -> None:
        """Report progress; with `coalesce`, a value not yet delivered is replaced by the newer one."""
        self._emit(value, coalesce)

    def sleep(self, seconds: float) -> None:
        """Wait, waking early when cancelled."""
        self._cancel.wait(seconds)


@dataclass
class TaskHandle:
    """A submitted task: cancel or pause it; `done` once its result was delivered."""

    id: int
    lane: str
    ctx: TaskContext
    on_done: Callable[[Any, BaseException | None], None] | None
    on_progress: Callable[[Any], None] | None
    future: Future | None = None
    done: bool = False
    _latest: Any = field(default=_LATEST)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Ask the task to stop (it checks `ctx.cancelled`)."""
        self.ctx._cancel.set()
        self.ctx._running.set()

    def pause(self) -> None:
        """Block the task at its next `ctx.check()`."""
        self.ctx._running.clear()

    def resume(self) -> None:
        """Let a paused task go on."""
        self.ctx._running.set()


class TaskRunner(QObject):
    """Runs functions on worker threads and delivers `(result, error)` on the main thread."""

    _finished = Signal(int, object, object)
    _progressed = Signal(int, object)
    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._tasks: dict[int, TaskHandle] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._left: list[Future] = []
        self._finished.connect(self._deliver_result, Qt.ConnectionType.QueuedConnection)
        self._progressed.connect(self._deliver_progress, Qt.ConnectionType.QueuedConnection)

    def submit(self, fn: Callable[[TaskContext], Any],
               on_done: Callable[[Any, BaseException | None], None] | None = None, *,
               lane: str = "io", on_progress: Callable[[Any], None] | None = None) -> TaskHandle:
        """Run `fn(ctx)` on `lane`; `on_done(result, error)` and `on_progress(value)` run on the main thread.

        A task that ends with `TaskCancelled` delivers that as its error. After `shutdown` (the
        window is closing) nothing runs and nothing is delivered.
        """
        task_id = next(self._ids)
        handle = TaskHandle(task_id, lane, TaskContext(lambda v, c: self._emit_progress(task_id, v, c)),
                            on_done, on_progress)
        if self._closed:
            handle.cancel()
            handle.done = True
            return handle
        self._tasks[task_id] = handle
        pool = self._pools.get(lane)
        if pool is None:
            pool = self._pools[lane] = ThreadPoolExecutor(LANES.get(lane, 1), thread_name_prefix=f"lriad-{lane}")
        handle.future = pool.submit(self._run, handle, fn)
        return handle

    def _run(self, handle: TaskHandle, fn: Callable[[TaskContext], Any]) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            if handle.ctx.cancelled and handle.lane not in KEPT_ON_QUIT:  # a kept one sees `cancelled` and ends soon
                raise TaskCancelled()
            result = fn(handle.ctx)
        except BaseException as err:  # delivered to on_done on the main thread
            error = err
        if not self._closed:
            self._finished.emit(handle.id, result, error)

    def _emit_progress(self, task_id: int, value: Any, coalesce: bool) -> None:
        handle = self._tasks.get(task_id)
        if handle is None or self._closed:
            return
        if not coalesce:
            self._progressed.emit(task_id, value)
            return
        with handle._lock:
            pending = handle._latest is not _LATEST
            handle._latest = value
        if not pending:
            self._progressed.emit(task_id, _LATEST)

    @Slot(int, object)
    def _deliver_progress(self, task_id: int, value: Any) -> None:
        handle = self._tasks.get(task_id)
        if handle is None or handle.done:
            return
        if value is _LATEST:
            with handle._lock:
                value, handle._latest = handle._latest, _LATEST
            if value is _LATEST:
                return
        if handle.on_progress is not None and not handle.ctx.cancelled:
            handle.on_progress(value)

    @Slot(int, object, object)
    def _deliver_result(self, task_id: int, result: Any, error: BaseException | None) -> None:
        handle = self._tasks.pop(task_id, None)
        if handle is None:
            return
        handle.done = True
        try:
            if handle.on_done is not None:
                handle.on_done(result, error)
            elif error is not None and not isinstance(error, TaskCancelled):
                log.error("background task failed", exc_info=error)
                raise error
        finally:
            if not self._tasks:
                self.idle.emit()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Tasks submitted and not yet delivered."""
        return len(self._tasks)

    @property
    def left_running(self) -> int:
        """After `shutdown`: tasks still running (a model call or camera loop that didn't stop in time)."""
        return sum(not f.done() for f in self._left)

    def wait_left(self, timeout_s: float | None = None) -> bool:
        """Wait for the tasks a `shutdown` left running; True once none is."""
        return not wait_for(self._left, timeout=timeout_s).not_done

    def shutdown(self, wait: bool = True, others_s: float = QUIT_WAIT_S) -> None:
        """Cancel every task and stop the threads. With `wait`, waits for the running tasks of the lanes that
        write to their end, and for the others at most `others_s` (`left_running` counts what is left)."""
        self._closed = True
        running = list(self._tasks.values())
        for handle in running:
            handle.cancel()
        for lane, pool in self._pools.items():
            pool.shutdown(wait=wait and lane in WRITING_LANES, cancel_futures=lane not in KEPT_ON_QUIT)
        self._left = [h.future for h in running if h.future is not None and h.lane not in WRITING_LANES]
        if wait and self._left:
            wait_for(self._left, timeout=others_s)
        self._tasks.clear()
