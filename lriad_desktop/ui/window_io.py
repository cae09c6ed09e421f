"""Getting images in and data out of the main window: dialogs, drops, the clipboard, exports, help."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (QApplication, QDialog, QFileDialog, QHeaderView, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from lriad_desktop import __version__
from lriad_desktop.core.capture import captures_dir
from lriad_desktop.core.export import EXPORTERS, ExportResult, export_reviewed
from lriad_desktop.core.images import IMAGE_SUFFIXES
from lriad_desktop.core.store import ReviewStore, StoreError
from lriad_desktop.ui.actions import ACTIONS, shortcut_table
from lriad_desktop.ui.theme import ThemeState, apply_theme, icon

if TYPE_CHECKING:
    from lriad_desktop.ui.main_window import MainWindow

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


def dropped_paths(mime: QMimeData) -> list[str]:
    """Local files and folders carried by a drop or the clipboard."""
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()] if mime.hasUrls() else []


def add_from_mime(window: "MainWindow", mime: QMimeData) -> bool:
    """Queue the files/folders (or the raw image) in `mime`; False when it holds neither."""
    paths = dropped_paths(mime)
    if paths:
        window.controller.add_paths(paths)
        return True
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return add_qimage(window, image, "clipboard")
    return False


def add_qimage(window: "MainWindow", image: QImage, prefix: str) -> bool:
    """Save an in-memory image under the data folder and queue it."""
    folder = captures_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        window.show_notice(f"Can't save the image: {err.strerror or err}")
        return False
    probe = save_snapshot_path(folder, prefix)
    if not image.save(str(probe), "PNG"):
        window.show_notice(f"Can't save the image to {probe}")
        return False
    window.controller.add_paths([str(probe)])
    return True


def save_snapshot_path(folder: Path, prefix: str) -> Path:
    """A fresh time-stamped PNG path in `folder` (the same naming as camera snapshots)."""
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    path, n = folder / f"{prefix}-{stamp}.png", 1
    while path.exists():
        path, n = folder / f"{prefix}-{stamp}-{n}.png", n + 1
    return path


def paste(window: "MainWindow") -> None:
    """Queue the clipboard image (or the files on it)."""
    if not add_from_mime(window, QGuiApplication.clipboard().mimeData()):
        window.show_notice("The clipboard holds no image and no image files")


def open_files(window: "MainWindow") -> None:
    """Ask for image files and queue them."""
    start = window.controller.settings.recent_folders[0] if window.controller.settings.recent_folders else ""
    files, _ = QFileDialog.getOpenFileNames(window, "Open images", start, IMAGE_FILTER)
    if files:
        window.controller.add_paths(files)


def open_folder(window: "MainWindow") -> None:
    """Ask for a folder and queue its images."""
    start = window.controller.settings.recent_folders[0] if window.controller.settings.recent_folders else ""
    folder = QFileDialog.getExistingDirectory(window, "Open a folder of images", start)
    if folder:
        window.controller.add_paths([folder])


def fill_recent(window: "MainWindow") -> None:
    """Fill the Open Recent menu."""
    menu = window.menus_["recent"]
    menu.clear()
    folders = window.controller.settings.recent_folders
    for folder in folders:
        act = menu.addAction(folder)
        act.triggered.connect(lambda _=False, f=folder: window.controller.add_paths([f]))
    if not folders:
        menu.addAction("No recent folders").setEnabled(False)


def open_camera(window: "MainWindow") -> None:
    """Show the camera dialog (one per window)."""
    from lriad_desktop.ui.camera_dialog import CameraDialog

    dialog = getattr(window, "camera_dialog", None)
    if dialog is None:
        dialog = CameraDialog(window.controller.runner, window.controller.settings.recent_sources, window)
        dialog.snapshotTaken.connect(lambda path: window.controller.add_paths([str(path)]))
        dialog.sourceUsed.connect(lambda s: window.controller.update_settings(
            window.controller.settings.with_recent_source(s)))
        window.camera_dialog = dialog
    dialog.show()
    dialog.raise_()


def open_settings(window: "MainWindow") -> None:
    """Show the settings dialog and apply what was accepted."""
    from lriad_desktop.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.controller.settings, window, runner=window.controller.runner)
    if dialog.exec() == QDialog.DialogCode.Accepted:
        apply_settings(window, dialog.result_settings())


def apply_settings(window: "MainWindow", settings) -> None:  # noqa: ANN001 - core Settings
    """Use new settings: saved, the model reloaded if it changed, the theme switched if it changed."""
    before = ThemeState.current
    window.controller.update_settings(settings)
    app = QApplication.instance()
    if isinstance(app, QApplication) and apply_theme(app, settings.theme) != before:
        refresh_icons(window)


def refresh_icons(window: "MainWindow") -> None:
    """Redraw icons after a theme change."""
    for spec in ACTIONS:
        if spec.icon:
            window.actions_[spec.name].setIcon(icon(spec.icon))
    window.review_panel.refresh_icons()
    window.view.viewport().update()
    window.queue_view.viewport().update()
    window.finding_panel.show_entry(window.current_entry())


def export(window: "MainWindow", kind: str) -> None:
    """Ask where, then export the reviewed set in the background."""
    _, what, default = EXPORTERS[kind]
    start = str(Path.home() / default)
    if kind == "yolo":
        target = QFileDialog.getExistingDirectory(window, f"Export {what} into", str(Path.home()))
    else:
        suffix = Path(default).suffix
        target, _ = QFileDialog.getSaveFileName(window, f"Export {what}", start, f"*{suffix}")
    if target:
        run_export(window, kind, target)


def run_export(window: "MainWindow", kind: str, target: str) -> None:
    """Export in a worker with its own store connection; the result is a notice."""
    store_path = window.controller.store.path

    def work(ctx: object) -> ExportResult:
        with ReviewStore.open(store_path) as store:
            return export_reviewed(store, kind, target)

    def done(result: ExportResult | None, error: BaseException | None) -> None:
        if error is not None:
            if not isinstance(error, (OSError, StoreError)):
                raise error
            window.show_notice(f"Export failed: {error}")
        else:
            window.show_notice(f"Exported {result.summary()}")

    window.show_notice(f"Exporting {EXPORTERS[kind][1]}…")
    window.controller.runner.submit(work, done, lane="io")


def show_shortcuts(window: "MainWindow") -> None:
    """List the keyboard shortcuts."""
    dialog = QDialog(window)
    dialog.setWindowTitle("Keyboard shortcuts")
    rows = shortcut_table()
    table = QTableWidget(len(rows), 2, dialog)
    table.setHorizontalHeaderLabels(["Keys", "Command"])
    for i, (keys, what) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(keys))
        table.setItem(i, 1, QTableWidgetItem(what))
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    QVBoxLayout(dialog).addWidget(table)
    dialog.resize(560, 640)
    dialog.show()


def show_about(window: "MainWindow") -> None:
    """About the app and where reviews are kept."""
    QMessageBox.about(window, "About LR-IAD Desktop",
                      f"<b>LR-IAD Desktop {__version__}</b><p>Mask-free industrial anomaly inspection with a reasoning "
                      "vision-language model (LR-IAD, arXiv 2504.19524). Reviews are kept in "
                      f"<code>{window.controller.store.path}</code>.</p>")
