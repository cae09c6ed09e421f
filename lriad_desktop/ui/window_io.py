"""Getting images in and data out: file and folder dialogs, drops, the clipboard, the camera, exports,
settings and help. Each helper is an object built from the controller, a parent widget for its
dialogs and a `notice` callback for messages; none of them knows the main window.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (QApplication, QDialog, QFileDialog, QHeaderView, QMenu, QMessageBox, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from lriad_desktop import __version__
from lriad_desktop.core.atomic_files import FileWriteError, write_bytes_atomically
from lriad_desktop.core.capture import captures_dir
from lriad_desktop.core.export import EXPORTERS, ExportResult, ExportTarget, export_reviewed
from lriad_desktop.core.images import IMAGE_SUFFIXES
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store import ReviewStore, StoreError
from lriad_desktop.ui.actions import shortcut_table
from lriad_desktop.ui.camera_dialog import CameraDialog
from lriad_desktop.ui.controller import AppController
from lriad_desktop.ui.imaging import png_bytes
from lriad_desktop.ui.settings_dialog import SettingsDialog
from lriad_desktop.ui.tables import read_only_table
from lriad_desktop.ui.theme import ThemeState, apply_theme

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
Notice = Callable[[str], None]


def dropped_paths(mime: QMimeData) -> list[str]:
    """Local files and folders carried by a drop or the clipboard."""
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()] if mime.hasUrls() else []


def carries_images(mime: QMimeData) -> bool:
    """Whether a drop or the clipboard holds files, folders or an image the queue can take."""
    return bool(dropped_paths(mime)) or mime.hasImage()


def save_snapshot_path(folder: Path, prefix: str) -> Path:
    """A fresh time-stamped PNG path in `folder` (the same naming as camera snapshots)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    path, n = folder / f"{prefix}-{stamp}.png", 1
    while path.exists():
        path, n = folder / f"{prefix}-{stamp}-{n}.png", n + 1
    return path


class FileIntake:
    """Every way images reach the queue: Open files / folder, Open recent, drops, paste, the camera."""

    def __init__(self, controller: AppController, parent: QWidget, notice: Notice) -> None:
        self.controller, self.parent, self.notice = controller, parent, notice
        self._camera: CameraDialog | None = None

    def _start_folder(self) -> str:
        recent = self.controller.settings.recent_folders
        return recent[0] if recent else ""

    def open_files(self) -> None:
        """Ask for image files and queue them."""
        files, _ = QFileDialog.getOpenFileNames(self.parent, "Open images", self._start_folder(), IMAGE_FILTER)
        if files:
            self.controller.add_paths(files)

    def open_folder(self) -> None:
        """Ask for a folder and queue its images."""
        folder = QFileDialog.getExistingDirectory(self.parent, "Open a folder of images", self._start_folder())
        if folder:
            self.controller.add_paths([folder])

    def fill_recent(self, menu: QMenu) -> None:
        """Fill the Open Recent menu."""
        menu.clear()
        folders = self.controller.settings.recent_folders
        for folder in folders:
            act = menu.addAction(folder)
            act.triggered.connect(lambda _=False, f=folder: self.controller.add_paths([f]))
        if not folders:
            menu.addAction("No recent folders").setEnabled(False)

    def add_from_mime(self, mime: QMimeData) -> bool:
        """Queue the files/folders (or the raw image) in `mime`; False when it holds neither."""
        paths = dropped_paths(mime)
        if paths:
            self.controller.add_paths(paths)
            return True
        if mime.hasImage():
            image = QImage(mime.imageData())
            if not image.isNull():
                return self.add_qimage(image, "clipboard")
        return False

    def add_qimage(self, image: QImage, prefix: str) -> bool:
        """Save an in-memory image under the data folder and queue it."""
        folder = captures_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self.notice(f"Can't save the image: {err.strerror or err}")
            return False
        probe = save_snapshot_path(folder, prefix)
        data = png_bytes(image)
        if not data:
            self.notice(f"Can't save the image to {probe}")
            return False
        try:
            write_bytes_atomically(probe, data)
        except FileWriteError as err:
            self.notice(f"Can't save the image: {err}")
            return False
        self.controller.add_paths([str(probe)])
        return True

    def paste(self) -> None:
        """Queue the clipboard image (or the files on it)."""
        if not self.add_from_mime(QGuiApplication.clipboard().mimeData()):
            self.notice("The clipboard holds no image and no image files")

    def camera_dialog(self) -> CameraDialog:
        """The camera dialog, made on first use (one per window)."""
        if self._camera is None:
            c = self.controller
            self._camera = CameraDialog(c.runner, c.settings.recent_sources, self.parent)
            self._camera.snapshotTaken.connect(lambda path: c.add_paths([str(path)]))
            self._camera.sourceUsed.connect(lambda s: c.update_settings(c.settings.with_recent_source(s)))
        return self._camera

    def open_camera(self) -> None:
        """Show the camera dialog."""
        dialog = self.camera_dialog()
        dialog.show()
        dialog.raise_()


class ExportAction:
    """File → Export: ask for the target each exporter declares (a file or a folder), then export the
    reviewed set in the background."""

    def __init__(self, controller: AppController, parent: QWidget, notice: Notice) -> None:
        self.controller, self.parent, self.notice = controller, parent, notice

    def ask(self, key: str) -> None:
        """Ask where, then export in format `key` (a key of `EXPORTERS`)."""
        exporter = EXPORTERS[key]
        if exporter.target is ExportTarget.FOLDER:
            target = QFileDialog.getExistingDirectory(self.parent, f"Export {exporter.title} into", str(Path.home()))
        else:
            target, _ = QFileDialog.getSaveFileName(self.parent, f"Export {exporter.title}",
                                                    str(Path.home() / exporter.default_name),
                                                    f"*{Path(exporter.default_name).suffix}")
        if target:
            self.run(key, target)

    def run(self, key: str, target: str) -> None:
        """Export in a worker with its own store connection; the result is a notice."""
        store_path = self.controller.store.path

        def work(ctx: object) -> ExportResult:
            with ReviewStore.open(store_path) as store:
                return export_reviewed(store, key, target)

        def done(result: ExportResult | None, error: BaseException | None) -> None:
            if error is not None:
                if not isinstance(error, (OSError, StoreError)):
                    raise error
                self.notice(f"Export failed: {error}")
            else:
                self.notice(f"Exported {result.summary()}")

        self.notice(f"Exporting {EXPORTERS[key].title}…")
        self.controller.runner.submit(work, done, lane="io")


class SettingsAction:
    """Edit → Settings: the dialog, then the new settings used at once (`on_theme_changed` redraws icons)."""

    def __init__(self, controller: AppController, parent: QWidget, on_theme_changed: Callable[[], None]) -> None:
        self.controller, self.parent, self.on_theme_changed = controller, parent, on_theme_changed

    def open(self) -> None:
        """Show the settings dialog and apply what was accepted."""
        dialog = SettingsDialog(self.controller.settings, self.parent, runner=self.controller.runner)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply(dialog.result_settings())

    def apply(self, settings: Settings) -> None:
        """Use new settings: saved, the model reloaded if it changed, the theme switched if it changed."""
        before = ThemeState.current
        self.controller.update_settings(settings)
        app = QApplication.instance()
        if isinstance(app, QApplication) and apply_theme(app, settings.theme) != before:
            self.on_theme_changed()


def show_shortcuts(parent: QWidget) -> None:
    """List the keyboard shortcuts."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("Keyboard shortcuts")
    rows = shortcut_table()
    table = read_only_table(["Keys", "Command"], len(rows), dialog)
    for i, (keys, what) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(keys))
        table.setItem(i, 1, QTableWidgetItem(what))
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    QVBoxLayout(dialog).addWidget(table)
    dialog.resize(560, 640)
    dialog.show()


def show_about(parent: QWidget, store_path: Path) -> None:
    """About the app and where reviews are kept."""
    QMessageBox.about(parent, "About LR-IAD Desktop",
                      f"<b>LR-IAD Desktop {__version__}</b><p>Mask-free industrial anomaly inspection with a reasoning "
                      "vision-language model (LR-IAD, arXiv 2504.19524). Reviews are kept in "
                      f"<code>{store_path}</code>.</p>")
