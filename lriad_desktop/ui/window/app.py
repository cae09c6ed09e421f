"""Starting the GUI: the application object, theme, store and settings, and the headless screenshot mode;
and leaving it at once on quit (`leave`)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from lriad_desktop.core.atomic_files import FileWriteError, write_bytes_atomically
from lriad_desktop.core.backends.engine import ModelFolderError, validate_adapter_folder, validate_model_folder
from lriad_desktop.core.paths import resources_dir
from lriad_desktop.core.settings import Settings, SettingsError, load_settings
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.ui.window.controller import AppController
from lriad_desktop.ui.window.demo_notice import offer_real_model
from lriad_desktop.ui.imaging import png_bytes
from lriad_desktop.ui.review.inspection import InspectorFactory, ModelState
from lriad_desktop.ui.window.main_window import MainWindow
from lriad_desktop.ui.window.system_libraries import check_window_libraries
from lriad_desktop.ui.theme import apply_theme

SCREENSHOT_TIMEOUT_S = 600


def create_app() -> QApplication:
    """The QApplication (the existing one, if any), named and themed."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("LR-IAD Desktop")
    app.setOrganizationName("lriad")
    return app


def follow_system_theme(app: QApplication, window: MainWindow) -> None:
    """Re-apply the palette when the desktop switches between light and dark (theme = system)."""
    def changed(*_: object) -> None:
        if window.controller.settings.theme == "system":
            apply_theme(app, "system")
            window.refresh_icons()

    app.styleHints().colorSchemeChanged.connect(changed)


class ScreenshotRun:
    """Opens the paths, inspects the first image, saves a screenshot once its finding is drawn, then quits."""

    def __init__(self, window: MainWindow, target: Path, timeout_s: float = SCREENSHOT_TIMEOUT_S) -> None:
        self.window, self.target = window, target
        self.rc: int | None = None
        self.message = ""
        c = window.controller
        c.scanFinished.connect(self._scanned)
        c.inspection.stateChanged.connect(self._model_state)
        c.entryChanged.connect(self._entry_changed)
        c.inspection.outcome.connect(self._inspected)
        window.currentShown.connect(self._shown)
        self._first: str | None = None
        self._done = False  # the inspection this run asked for has come back (a stored old finding doesn't count)
        self._timer = QTimer(window)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self._finish(3, f"timed out after {timeout_s:.0f} s"))
        self._timer.start(int(timeout_s * 1000))

    def _scanned(self, found: int) -> None:
        if self._first is not None:
            return
        if found == 0:
            self._finish(1, "no images found")
            return
        self.window.set_current(0)
        self._first = self.window.controller.queue.entry(0).path
        self.window.inspect_current()

    def _model_state(self) -> None:
        insp = self.window.controller.inspection
        if insp.state is ModelState.FAILED:
            self._finish(2, insp.state_text)

    def _entry_changed(self, row: int) -> None:
        entry = self.window.controller.queue.entry(row)
        if entry.path == self._first and entry.error:
            self._finish(1, f"{entry.path}: {entry.error}")

    def _inspected(self, outcome: object) -> None:
        if getattr(outcome, "path", None) == self._first:
            self._done = True
            QTimer.singleShot(0, self._maybe_grab)

    def _shown(self, path: str, has_finding: bool) -> None:
        self._maybe_grab()

    def _maybe_grab(self) -> None:
        entry = self.window.current_entry()
        shown = self.window.view.image
        if (self._done and self.rc is None and entry is not None and entry.path == self._first
                and entry.finding is not None and shown is not None and shown.path == self._first):
            QTimer.singleShot(250, self._grab)  # let layouts settle and the view repaint

    def _grab(self) -> None:
        if self.rc is not None:
            return
        data = png_bytes(self.window.grab())
        try:
            if not data:
                raise FileWriteError(self.target, OSError("Qt can't encode the window as PNG"))
            write_bytes_atomically(self.target, data)
        except FileWriteError as err:
            self._finish(1, str(err))
        else:
            self._finish(0, f"screenshot saved to {self.target}")

    def _finish(self, rc: int, message: str) -> None:
        if self.rc is not None:
            return
        self.rc, self.message = rc, message
        self._timer.stop()
        QTimer.singleShot(0, self.window.close)


def _settings_for_run(model: Path | None, adapter: Path | None, device: str | None) -> Settings:
    settings, notes = load_settings()
    for note in notes:
        print(f"warning: settings: {note}", file=sys.stderr)
    changes: dict[str, object] = {}
    if model is not None:
        changes["model_dir"] = str(validate_model_folder(model).path.resolve())
    if adapter is not None:
        changes["adapter_dir"] = str(validate_adapter_folder(adapter).resolve())
    if device is not None:
        changes["device"] = device
    return settings.with_changes(**changes)


def leave(rc: int) -> NoReturn:
    """End the process now, after the window closed and the store with it. By then every write is done: reviews
    (the store lane is waited for), exports and reports (the io lane too), settings (saved as they change).
    What a normal exit would still wait for — a model load or generation deep in torch, which can't be
    interrupted, and the interpreter's teardown of torch — is seconds with nothing to save."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # no console (a windowed build), or already closed
            pass
    os._exit(rc)


def run_gui(paths: Sequence[str | os.PathLike] = (), model: Path | None = None, adapter: Path | None = None,
            device: str | None = None, screenshot: Path | None = None,
            inspector_factory: InspectorFactory | None = None) -> int:
    """Run the app; with `screenshot`, run headless until the first image is inspected and drawn (and return
    its exit status; without, the process ends when the window closes: `leave`)."""
    if screenshot is not None and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    missing = check_window_libraries()
    if missing is not None:  # Qt would abort the process with a hint few people read
        print(missing, file=sys.stderr)
        return 2
    app = create_app()
    try:
        settings = _settings_for_run(model, adapter, device)
        store = ReviewStore.open()
    except (ModelFolderError, StoreError, SettingsError) as err:
        print(f"error: {err}", file=sys.stderr)
        if screenshot is None:
            QMessageBox.critical(None, "LR-IAD Desktop", str(err))
        return 2
    apply_theme(app, settings.theme)
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "lriad-desktop.svg")))
    controller = AppController(store, settings, inspector_factory=inspector_factory,
                               persist_settings=screenshot is None)
    window = MainWindow(controller)
    controller.reconcile_training()  # what a killed training run left, put right in the background
    follow_system_theme(app, window)
    run = ScreenshotRun(window, Path(screenshot)) if screenshot is not None else None
    window.show()
    if run is None:  # a first launch on the bundled model says what it is and offers a real one
        offer_real_model(controller, window, window.models.show)
    if paths:
        controller.add_paths([str(p) for p in paths])
    elif run is None:  # no files given: the queue of the last session comes back
        window.intake.reopen_last_queue()
    else:
        print("error: give at least one image or folder to screenshot", file=sys.stderr)
        window.close()
        store.close()
        return 1
    rc = app.exec()
    store.close()
    if run is None:  # an inspector's session: quit within a second, not after the model call under way
        leave(rc)
    if run is not None:
        if run.rc is None:
            run.rc, run.message = 1, "the window closed before the screenshot"
        print(run.message, file=sys.stderr if run.rc else sys.stdout)
        return run.rc
    return rc
