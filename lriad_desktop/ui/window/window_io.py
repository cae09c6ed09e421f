"""Getting images in and data out: file and folder dialogs, drops, the clipboard, the camera, exports,
settings and help. Each helper is an object built from the controller, a parent widget for its
dialogs and a `notice` callback for messages; none of them knows the main window.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QEvent, QMimeData, QObject
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from lriad_desktop import __version__
from lriad_desktop.core.atomic_files import FileWriteError, write_bytes_atomically
from lriad_desktop.core.line.capture import captures_dir
from lriad_desktop.core.evaluation.export import EXPORTERS, ExportResult, ExportTarget, export_reviewed
from lriad_desktop.core.inspection.images import IMAGE_SUFFIXES
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.core.plurals import count
from lriad_desktop.ui.dialogs.camera_dialog import CameraDialog
from lriad_desktop.ui.window.controller import AppController
from lriad_desktop.ui.imaging import png_bytes
from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog
from lriad_desktop.ui.theme import ThemeState, apply_theme

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
Notice = Callable[[str], None]


def dropped_paths(mime: QMimeData) -> list[str]:
    """Local files and folders carried by a drop or the clipboard."""
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()] if mime.hasUrls() else []


def carries_images(mime: QMimeData) -> bool:
    """Whether a drop or the clipboard holds files, folders or an image the queue can take."""
    return bool(dropped_paths(mime)) or mime.hasImage()


def drop_hint(mime: QMimeData) -> str:
    """What dropping `mime` here does, in words, for the highlight while it is dragged over the window."""
    paths = dropped_paths(mime)
    if not paths:
        return "Drop to add this image to the queue"
    folders = sum(1 for p in paths if Path(p).is_dir())
    files = len(paths) - folders
    what = [f"{folders} folder{'s' if folders != 1 else ''}" if folders else "",
            f"{files} file{'s' if files != 1 else ''}" if files else ""]
    return "Drop to add " + " and ".join(w for w in what if w) + " to the queue"


def object_hints(controller: AppController, path: str) -> dict[str, str]:
    """What setting the object name for this image's folder, or for the image alone, changes: how many queued
    images get the new name and what they are called now."""
    folder = Path(path).parent
    in_folder = [e.path for e in controller.queue.entries() if Path(e.path).parent == folder]
    now = sorted({controller.object_name_for(p) for p in in_folder}) or [controller.object_name_for(path)]
    names = ", ".join(f"“{n}”" for n in now[:3]) + (" …" if len(now) > 3 else "")
    return {"folder": f"Changes the prompt of the {count(len(in_folder), 'queued image')} in "
                      f"{folder.name or folder}/ (and any added there later); now {names}. An image with its own "
                      "name keeps it.",
            "image": f"Changes the prompt of {Path(path).name} only; now “{controller.object_name_for(path)}”."}


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
        """Where the open dialogs start: the folder images were last opened from."""
        s = self.controller.settings
        for folder in (s.last_open_folder, *s.recent_folders):
            if folder and Path(folder).is_dir():
                return folder
        return ""

    def _opened_from(self, folder: Path) -> None:
        c = self.controller
        if str(folder) != c.settings.last_open_folder:
            c.update_settings(c.settings.with_changes(last_open_folder=str(folder)))

    def open_files(self) -> None:
        """Ask for image files and queue them."""
        files, _ = QFileDialog.getOpenFileNames(self.parent, "Open images", self._start_folder(), IMAGE_FILTER)
        if files:
            self._opened_from(Path(files[0]).parent)
            self.controller.add_paths(files)

    def open_folder(self) -> None:
        """Ask for a folder and queue its images."""
        folder = QFileDialog.getExistingDirectory(self.parent, "Open a folder of images", self._start_folder())
        if folder:
            self._opened_from(Path(folder).parent)
            self.controller.add_paths([folder])

    def reopen_last_queue(self) -> int:
        """Queue again what was queued when the app last closed (what is gone is skipped and said); returns how
        many files and folders."""
        c = self.controller
        items = tuple(p for p in c.settings.last_queue if Path(p).exists())
        gone = len(c.settings.last_queue) - len(items)
        if gone:
            c.update_settings(c.settings.with_queued(()).with_queued(items))
            self.notice(f"{count(gone, 'file or folder', 'files or folders')} of the last queue "
                        f"{'is' if gone == 1 else 'are'} gone")
        if items:
            c.add_paths(items, remember=False)
        return len(items)

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

    def start_folder(self) -> Path:
        """Where the export dialogs start: the folder last exported to (else the home folder)."""
        last = Path(self.controller.settings.last_export_folder or Path.home())
        return last if last.is_dir() else Path.home()

    def ask(self, key: str) -> None:
        """Ask where (starting in the folder last exported to), then export in format `key` (of `EXPORTERS`)."""
        exporter = EXPORTERS[key]
        start = self.start_folder()
        if exporter.target is ExportTarget.FOLDER:
            target = QFileDialog.getExistingDirectory(self.parent, f"Export {exporter.title} into", str(start))
        else:
            target, _ = QFileDialog.getSaveFileName(self.parent, f"Export {exporter.title}",
                                                    str(start / exporter.default_name),
                                                    f"*{Path(exporter.default_name).suffix}")
        if target:
            c = self.controller
            # a folder export (YOLO) starts in that folder next time; a file export in the file's folder
            folder = str(Path(target) if exporter.target is ExportTarget.FOLDER else Path(target).parent)
            if folder != c.settings.last_export_folder:
                c.update_settings(c.settings.with_changes(last_export_folder=folder))
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
        try:
            names = {v.adapter_path: v.name for v in self.controller.store.model_versions() if v.adapter_path}
        except StoreError:
            names = {}
        dialog = SettingsDialog(self.controller.settings, self.parent, runner=self.controller.runner,
                                version_names=names)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply(dialog.result_settings())

    def apply(self, settings: Settings) -> None:
        """Use new settings: saved, the model reloaded if it changed, the theme switched if it changed."""
        before = ThemeState.current
        self.controller.update_settings(settings)
        app = QApplication.instance()
        if isinstance(app, QApplication) and apply_theme(app, settings.theme) != before:
            self.on_theme_changed()


def show_about(parent: QWidget, store_path: Path) -> None:
    """About the app and where reviews are kept."""
    QMessageBox.about(parent, "About LR-IAD Desktop",
                      f"<b>LR-IAD Desktop {__version__}</b><p>Mask-free industrial anomaly inspection with a reasoning "
                      "vision-language model (LR-IAD, arXiv 2504.19524). Reviews are kept in "
                      f"<code>{store_path}</code>.</p>")


class DropTarget(QObject):
    """Files, folders or images dropped on any part of the main window (a text field included) go to the queue;
    while they are dragged over it, the image view is highlighted with what dropping them does (an event filter
    on the window and every child)."""

    def __init__(self, window: QMainWindow, view: Any, intake: FileIntake) -> None:
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
