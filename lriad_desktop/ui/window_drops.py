"""Files, folders or images dropped on any part of the main window (a text field included) go to the queue;
while they are dragged over the window, the image view is highlighted with what dropping them does."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QMainWindow, QWidget

from lriad_desktop.ui.image_view import ImageView
from lriad_desktop.ui.window_io import FileIntake, carries_images, drop_hint


class DropTarget(QObject):
    """An event filter on the window and every child: drags of images anywhere are the window's."""

    def __init__(self, window: QMainWindow, view: ImageView, intake: FileIntake) -> None:
        super().__init__(window)
        self.view, self.intake = view, intake
        window.setAcceptDrops(True)
        for widget in (window, *window.findChildren(QWidget)):
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            mime = event.mimeData()
            if carries_images(mime):
                if kind == QEvent.Type.Drop:
                    self.view.set_drop_hint("")
                    self.intake.add_from_mime(mime)
                else:
                    self.view.set_drop_hint(drop_hint(mime))
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.DragLeave:
            self.view.set_drop_hint("")
        return super().eventFilter(watched, event)
