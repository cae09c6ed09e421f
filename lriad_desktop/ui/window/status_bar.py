"""The main window's status bar: the queue's counts, the inspection's progress with Pause and Cancel,
and the model in use with its state."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtGui import QAction
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QLabel, QProgressBar, QSizeGrip, QStatusBar, QToolButton, QWidget

from lriad_desktop.core.models.listing import DEMO_MODEL_NOTE
from lriad_desktop.core.store.review import ImageStatus
from lriad_desktop.ui.window.controller import AppController
from lriad_desktop.ui.review.inspection import ModelState


class InspectionStatus:
    """The permanent widgets of `bar`, kept current from the controller's signals. `sticky_notice` shows a
    message that stays (a model that can't load)."""

    def __init__(self, controller: AppController, bar: QStatusBar, actions: dict[str, QAction],
                 sticky_notice: Callable[[str], None]) -> None:
        self.controller, self.actions, self.sticky_notice = controller, actions, sticky_notice
        self.model_label = QLabel()
        self.model_label.setObjectName("modelState")
        self.counts_label = QLabel()
        self.counts_label.setToolTip("Defective: your verdict where you reviewed the image, the model's elsewhere. "
                                     "Flagged: you changed the verdict. Corrected: you changed a defect's type or box.")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(200)
        self.progress.setTextVisible(True)
        self.pause_button = QToolButton()
        self.pause_button.setDefaultAction(actions["pause"])
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(actions["cancel"])
        for w in (self.progress, self.pause_button, self.cancel_button):
            w.setVisible(False)
        for w in (self.counts_label, self.progress, self.pause_button, self.cancel_button, self.model_label):
            bar.addPermanentWidget(w)
        c = controller
        actions["pause"].toggled.connect(self._pause_toggled)
        c.queue.countsChanged.connect(self.update_counts)
        c.versionsChanged.connect(self.update_model_state)
        c.inspection.stateChanged.connect(self.update_model_state)
        c.inspection.progress.connect(self.show_progress)
        c.inspection.batchFinished.connect(self._batch_finished)
        self.update_counts()

    def message_room(self) -> int:
        """The width (pixels) the status bar leaves its messages, left of its permanent widgets."""
        bar = self.counts_label.parentWidget()
        while bar is not None and not isinstance(bar, QStatusBar):
            bar = bar.parentWidget()
        if bar is None:
            return 0
        lefts = [w.mapTo(bar, QPoint(0, 0)).x() for w in bar.findChildren(QWidget)
                 if w.isVisible() and w.parentWidget() is bar and not isinstance(w, QSizeGrip)]
        return min(lefts, default=bar.width()) - 16  # the bar's own margins around the message

    def fits(self, text: str) -> bool:
        """Whether a message reads whole in the status bar (else it would be cut off at the first widget)."""
        bar = self.counts_label.parentWidget()
        return bar is not None and bar.fontMetrics().horizontalAdvance(text) <= self.message_room()

    def _pause_toggled(self, paused: bool) -> None:
        insp = self.controller.inspection
        insp.pause() if paused else insp.resume()
        self.actions["pause"].setText("&Resume" if paused else "&Pause")

    def show_progress(self, done: int, total: int) -> None:
        """'Inspecting 3 / 40' with Pause and Cancel while a batch runs; hidden when none does."""
        busy = total > 0
        for w in (self.progress, self.pause_button, self.cancel_button):
            w.setVisible(busy)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"Inspecting {done} / {total}")

    def _batch_finished(self) -> None:
        self.show_progress(0, 0)
        self.actions["pause"].setChecked(False)

    def update_model_state(self) -> None:
        """The model in use (its registered version name when it has one) and whether it is ready."""
        insp = self.controller.inspection
        s = self.controller.settings
        name = Path(s.model_dir).name if s.model_dir else "lriad-tiny"
        if s.adapter_dir:
            name += f" + {Path(s.adapter_dir).name}"
        if insp.state is ModelState.READY:
            name = insp.model_version
        version = self.controller.model_in_use()
        if version is not None and version.active:  # a registered version: show its name ("lriad-tiny-v3")
            name = version.name
        demo = not s.model_dir  # the bundled base model, with or without an adapter
        state = {ModelState.NOT_LOADED: "none", ModelState.LOADING: "loading", ModelState.READY: "ready",
                 ModelState.FAILED: "failed"}[insp.state]
        short = {ModelState.NOT_LOADED: "not loaded", ModelState.LOADING: "loading…", ModelState.READY: "ready",
                 ModelState.FAILED: "can't load"}[insp.state]
        # short, so the status bar keeps room for its messages; the whole story is the tooltip
        self.model_label.setText(f"Model: {name}{' (demo model)' if demo else ''} · {short}")
        self.model_label.setToolTip(f"{insp.model_version or name}{f' ({DEMO_MODEL_NOTE})' if demo else ''} · "
                                    f"{insp.state_text or 'not loaded'}")
        self.model_label.setProperty("state", state)
        self.model_label.style().unpolish(self.model_label)
        self.model_label.style().polish(self.model_label)
        if insp.state is ModelState.FAILED:
            self.sticky_notice(f"The model can't be loaded: {insp.state_text}. Choose a model folder in Settings "
                               "(Ctrl+,).")

    def update_counts(self) -> None:
        """'40 images · 12 inspected · 4 defective · 9 reviewed (2 flagged, 1 corrected)'; defective counts the
        inspector's verdict where there is one, the model's elsewhere."""
        q = self.controller.queue
        counts = q.counts()
        n = q.rowCount()
        inspected = n - counts[ImageStatus.NOT_INSPECTED] - counts[ImageStatus.ERROR]
        reviewed = sum(v for k, v in counts.items() if k.reviewed)
        kinds = ", ".join(f"{k} {word}" for k, word in ((counts[ImageStatus.FLAGGED], "flagged"),
                                                        (counts[ImageStatus.CORRECTED], "corrected")) if k)
        bits = [f"{n} image" + ("" if n == 1 else "s"), f"{inspected} inspected", f"{q.defective_count()} defective",
                f"{reviewed} reviewed" + (f" ({kinds})" if kinds else "")]  # no "(0 flagged, 0 corrected)": room
        if counts[ImageStatus.ERROR]:
            n_err = counts[ImageStatus.ERROR]
            bits.append(f"{n_err} error" + ("s" if n_err > 1 else ""))
        self.counts_label.setText(" · ".join(bits))
