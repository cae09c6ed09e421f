"""File → Watch Folder: the app inspects each image as it lands in a folder (a camera's output).

The hot folder (`core.line.hot_folder`: complete files only, in landing order, those already there first) runs as
one long task on the "capture" lane of the one task API, holding the folder's watch lock (`core.line.watch`: one
watch a folder, the app's or `lriad watch`); each batch of complete files reaches the main
thread as progress and joins the queue, where the images the store already holds an inspection of keep it
and the others are inspected (as `lriad watch` does, so a restart inspects nothing twice). Unchecking the
action, or closing the window, cancels the task.

An image that lands never becomes the current one: the inspector's keys (Space accepts) stay on the image
on screen. The queue marks the arrivals "new" until they are looked at, and the status bar says how many
landed, how many are still new and the newest one's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QLabel, QStatusBar, QWidget

from lriad_desktop.core.line.hot_folder import HotFolder, HotFolderError
from lriad_desktop.core.line.watch import watching
from lriad_desktop.ui.tasks import TaskCancelled, TaskContext, TaskHandle

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

WAIT_S = 0.25  # how often the watching task looks for cancellation


def watch_folder(folder: str, ctx: TaskContext) -> None:
    """The task: hand over complete files as progress until cancelled, holding the folder's watch lock (raises
    HotFolderError up front, as when `lriad watch` or another app already watches the folder)."""
    with watching(Path(folder)), HotFolder(folder) as hot:
        while not ctx.cancelled:
            ready = hot.wait(WAIT_S)
            if ready:
                ctx.progress([str(p) for p in ready], coalesce=False)


class FolderWatchMode:
    """The *Watch Folder* toggle: asks for a folder, watches it, shows what it does in the status bar."""

    def __init__(self, controller: AppController, parent: QWidget, action: QAction, bar: QStatusBar,
                 notice: Callable[[str], None],
                 ask_folder: Callable[[QWidget, str], str] | None = None) -> None:
        self.controller, self.parent, self.action, self.notice = controller, parent, action, notice
        self.status = QLabel()
        self.status.setObjectName("watchStatus")
        bar.addPermanentWidget(self.status)
        self._ask_folder = ask_folder or (lambda w, start: QFileDialog.getExistingDirectory(w, "Watch Folder", start))
        self._task: TaskHandle | None = None
        self._watch_id = 0  # which watch a late result belongs to
        self.folder = ""
        self.landed = 0
        self.newest = ""  # the name of the last image that landed
        self.status.setVisible(False)
        action.toggled.connect(self._toggled)
        controller.imagesLanded.connect(self._queued)
        controller.queue.countsChanged.connect(lambda: self._show() if self._task is not None else None)

    @property
    def watching(self) -> bool:
        return self._task is not None

    def _toggled(self, on: bool) -> None:
        if on and self._task is None:
            recent = self.controller.settings.recent_folders
            folder = self._ask_folder(self.parent, recent[0] if recent else "")
            if not folder:
                self._set_checked(False)
                return
            self.start(folder)
        elif not on and self._task is not None:
            self.stop()

    def _set_checked(self, on: bool) -> None:
        self.action.blockSignals(True)
        self.action.setChecked(on)
        self.action.blockSignals(False)

    def start(self, folder: str) -> None:
        """Watch `folder` (stopping any other watch)."""
        self.stop()
        self.folder = str(Path(folder).expanduser().resolve())
        self.landed = 0
        self.newest = ""
        self._watch_id += 1
        watch_id, folder = self._watch_id, self.folder
        self._task = self.controller.runner.submit(
            lambda ctx: watch_folder(folder, ctx), lambda result, error: self._ended(watch_id, error),
            lane="capture", on_progress=lambda paths: self._landed(watch_id, paths))
        self._set_checked(True)
        self._show()
        self.notice(f"Watching {self.folder}: each image that lands there is inspected")

    def stop(self) -> None:
        """Stop watching (images already queued are still inspected)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self.notice(f"Stopped watching {self.folder}")
        self._set_checked(False)
        self.status.setVisible(False)

    def _landed(self, watch_id: int, paths: list[str]) -> None:
        if self._task is None or watch_id != self._watch_id:
            return
        self.landed += len(paths)
        self.newest = Path(paths[-1]).name
        self._show()
        # queued and inspected, never made current; not remembered (the watched folder is not a queue to reopen)
        self.controller.add_paths(paths, inspect=True, remember=False, landed=True)

    def _queued(self, first: int, count: int) -> None:
        """Images that landed are in the queue (marked new): say so, without moving off the image on screen."""
        q = self.controller.queue
        names = [q.entry(r).name for r in range(first, min(first + count, q.rowCount()))]
        if not names:
            return
        what = names[0] if len(names) == 1 else f"{len(names)} images"
        self.notice(f"{what} landed · marked new in the queue")  # short: the status bar's other texts need room

    def _show(self) -> None:
        name = Path(self.folder).name or self.folder
        unseen = self.controller.queue.unseen_count()
        text = f"◉ Watching {name} · {self.landed} landed"
        if unseen:
            text += f" · {unseen} new"
        self.status.setText(text)
        newest = f"; the newest: {self.newest}" if self.newest else ""
        self.status.setToolTip(f"Watching {self.folder}{newest}. New: landed and not looked at yet (marked in the "
                               "queue). File → Watch Folder stops")
        self.status.setVisible(True)

    def _ended(self, watch_id: int, error: BaseException | None) -> None:
        if isinstance(error, TaskCancelled) or self._task is None or watch_id != self._watch_id:
            return
        self._task = None
        self._set_checked(False)
        self.status.setVisible(False)
        if isinstance(error, HotFolderError):
            self.notice(str(error))
        elif error is not None:
            self.notice(f"Watching {self.folder} stopped: {error}")
