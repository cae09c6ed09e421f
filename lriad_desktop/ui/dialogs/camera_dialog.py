"""Capture: live preview from a camera index, a video file or an RTSP/HTTP stream; Snapshot queues a frame.

Opening and reading run on the task runner's "capture" lane; the preview shows the newest
frame only (older ones are dropped if the UI is busy), so a fast camera can't flood the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QHideEvent, QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from lriad_desktop.core.line.capture import CaptureError, Frame, FrameGrabber, parse_source, save_snapshot
from lriad_desktop.ui.tasks import TaskCancelled, TaskContext, TaskHandle, TaskRunner
from lriad_desktop.ui.theme import icon

PREVIEW = QSize(960, 600)
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.m4v *.webm *.mjpg *.mjpeg);;All files (*)"


def _preview_image(frame: Frame) -> QImage:
    small = frame.preview(PREVIEW.width(), PREVIEW.height())  # OpenCV shrinks without holding the GIL
    h, w = small.shape[:2]
    return QImage(small.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _capture_loop(grabber: FrameGrabber, ctx: TaskContext) -> int:
    """Worker: open the source and send (frame, preview) pairs until cancelled; returns frames read."""
    grabber.open()
    count = 0
    try:
        while not ctx.cancelled:
            frame = grabber.read()
            count += 1
            ctx.progress((frame, _preview_image(frame)))
    finally:
        grabber.close()
    return count


class CameraDialog(QDialog):
    """The capture window (non-modal): choose a source, watch it, take snapshots into the queue."""

    snapshotTaken = Signal(object)  # Path of the saved PNG
    sourceUsed = Signal(str)
    frameShown = Signal(int)  # index of the frame now in the preview

    def __init__(self, runner: TaskRunner, recent_sources: Sequence[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Camera")
        self.setWindowIcon(icon("camera"))
        self._runner = runner
        self._task: TaskHandle | None = None
        self._grabber: FrameGrabber | None = None
        self.last_frame: Frame | None = None
        self.source = QComboBox()
        self.source.setEditable(True)
        self.source.setMinimumWidth(360)
        self.source.lineEdit().setPlaceholderText("0 · video file · rtsp://… · http://…")
        for s in list(recent_sources) + [s for s in ("0", "1") if s not in recent_sources]:
            self.source.addItem(s)
        self.browse = QPushButton("Video file…")
        self.start_button = QPushButton(icon("resume"), " Start")
        self.start_button.setObjectName("primary")
        self.preview = QLabel("No source running.\nChoose a camera number, a video file or a stream URL, then Start.")
        self.preview.setObjectName("preview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(640, 400)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.info = QLabel("")
        self.info.setObjectName("meta")
        self.message = QLabel("")
        self.message.setObjectName("fieldError")
        self.message.setWordWrap(True)
        self.snapshot_button = QPushButton(icon("snapshot"), " Snapshot  (Space)")
        self.snapshot_button.setShortcut("Space")
        self.snapshot_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        top = QHBoxLayout()
        top.addWidget(QLabel("Source"))
        top.addWidget(self.source, 1)
        top.addWidget(self.browse)
        top.addWidget(self.start_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.info, 1)
        bottom.addWidget(self.snapshot_button)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.message)
        layout.addLayout(bottom)
        self.browse.clicked.connect(self._browse)
        self.start_button.clicked.connect(self.toggle)
        self.snapshot_button.clicked.connect(self.snapshot)
        self.close_button.clicked.connect(self.close)
        self.resize(1000, 720)

    @property
    def running(self) -> bool:
        return self._task is not None

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a video file", "", VIDEO_FILTER)
        if path:
            self.source.setEditText(path)

    def toggle(self) -> None:
        """Start or stop the source."""
        self.stop() if self.running else self.start()

    def start(self, text: str | None = None) -> bool:
        """Start showing the source in the box (or `text`); a bad source is a message, not a crash."""
        if text is not None:
            self.source.setEditText(text)
        self.stop()
        try:
            source = parse_source(self.source.currentText())
        except CaptureError as err:
            self._fail(str(err))
            return False
        self.message.setText("")
        self.preview.setText(f"Opening {source.describe()}…")
        self.info.setText("")
        grabber = self._grabber = FrameGrabber(source)
        self._task = self._runner.submit(lambda ctx: _capture_loop(grabber, ctx),
                                         lambda n, err: self._stopped(grabber, n, err),
                                         lane="capture", on_progress=self._show)
        self.start_button.setText(" Stop")
        self.start_button.setIcon(icon("cancel"))
        self.sourceUsed.emit(self.source.currentText().strip())
        return True

    def stop(self) -> None:
        """Stop the running source (the worker closes it)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._grabber = None
        self.start_button.setText(" Start")
        self.start_button.setIcon(icon("resume"))

    def _show(self, item: tuple[Frame, QImage]) -> None:
        frame, preview = item
        self.last_frame = frame
        pix = QPixmap.fromImage(preview)
        self.preview.setPixmap(pix.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        w, h = frame.size
        self.info.setText(f"{w} × {h} · {frame.fps:.1f} fps · frame {frame.index}")
        self.snapshot_button.setEnabled(True)
        self.frameShown.emit(frame.index)

    def _stopped(self, grabber: FrameGrabber, count: int | None, error: BaseException | None) -> None:
        if grabber is not self._grabber:
            return  # a source stopped earlier
        self.stop()
        if error is None or isinstance(error, TaskCancelled):
            return
        if isinstance(error, CaptureError):
            self._fail(str(error))
        else:
            raise error

    def _fail(self, text: str) -> None:
        self.message.setText(text)
        if self.last_frame is None:
            self.preview.setText("No picture.")
        self.stop()

    def snapshot(self) -> Path | None:
        """Save the frame on screen as a PNG (in a worker) and queue it; returns None when there is no frame."""
        frame = self.last_frame
        if frame is None:
            self.message.setText("No frame yet: start a source first")
            return None
        self._runner.submit(lambda ctx: save_snapshot(frame.rgb), self._saved, lane="io")
        return None

    def _saved(self, path: Path | None, error: BaseException | None) -> None:
        if error is not None:
            if not isinstance(error, OSError):
                raise error
            self.message.setText(f"Can't save the snapshot: {error}")
            return
        self.info.setText(f"Saved {path.name} to the queue")
        self.snapshotTaken.emit(path)

    def hideEvent(self, event: QHideEvent) -> None:
        self.stop()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()
        super().closeEvent(event)
