"""How long "Improve model" trains: minutes or steps, with an estimate from the pace measured on this machine's
last run of the same model (a guess, said as one, before the first run)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QGridLayout, QLabel, QRadioButton, QSpinBox, QWidget

from lriad_desktop.core.plurals import count, plural
from lriad_desktop.core.training_runs.step_time import FALLBACK_S_PER_STEP, STEP_MARGIN, minutes_for_steps, steps_for_minutes
from lriad_desktop.ui.improve.training_text import format_duration


class TrainingLength(QWidget):
    """'Train for (•) 10 minutes ( ) 150 steps' and what that comes to; `length()` is ("minutes" | "steps", n)."""

    changed = Signal()

    def __init__(self, by: str = "minutes", minutes: int = 10, steps: int = 150, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.s_per_step: float | None = None
        self.by_minutes = QRadioButton("about")
        self.by_steps = QRadioButton("exactly")
        group = QButtonGroup(self)
        group.addButton(self.by_minutes)
        group.addButton(self.by_steps)
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 24 * 60)
        self.minutes.setSuffix(" minutes")
        self.minutes.setValue(minutes)
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.steps.setSuffix(" steps")
        self.steps.setValue(steps)
        self.steps.setToolTip("GRPO optimiser steps: each one tries several answers per image and learns from "
                              "the better ones")
        self.estimate = QLabel()
        self.estimate.setObjectName("meta")
        self.estimate.setWordWrap(True)
        (self.by_steps if by == "steps" else self.by_minutes).setChecked(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Train for"), 0, 0)
        grid.addWidget(self.by_minutes, 0, 1)
        grid.addWidget(self.minutes, 0, 2)
        grid.addWidget(self.by_steps, 1, 1)
        grid.addWidget(self.steps, 1, 2)
        grid.addWidget(self.estimate, 2, 0, 1, 4)
        grid.setColumnStretch(3, 1)
        for signal in (self.by_minutes.toggled, self.minutes.valueChanged, self.steps.valueChanged):
            signal.connect(lambda *_: self._changed())
        self._changed()

    def set_pace(self, s_per_step: float | None) -> None:
        """The pace measured on the last run of this model here (None: never trained it)."""
        self.s_per_step = s_per_step
        self._changed()

    def length(self) -> tuple[str, int]:
        """("minutes", 10) or ("steps", 150)."""
        return ("minutes", self.minutes.value()) if self.by_minutes.isChecked() else ("steps", self.steps.value())

    def estimate_text(self) -> str:
        """What the chosen length comes to at the measured pace (or the guess)."""
        pace = self.s_per_step
        source = (f"{pace:.1f} s a step, measured on the last run of this model here" if pace else
                  f"about {FALLBACK_S_PER_STEP:.0f} s a step is a guess: this model hasn't trained here yet; the run "
                  "measures its pace and shows the time left as it goes")
        if self.by_minutes.isChecked():
            steps = steps_for_minutes(self.minutes.value(), pace) / STEP_MARGIN
            head = f"≈ {count(round(steps), 'step')} in {self.minutes.value()} min"
        else:
            n = self.steps.value()
            head = f"≈ {format_duration(minutes_for_steps(n, pace) * 60)} for {count(n, 'step')}"
        return (f"{head} ({source}). Checking the model before and after adds a little, and so does a short "
                "supervised warm start when a flag names a defect the model has never said (inside the minutes; "
                "on top of the steps).")

    def _changed(self) -> None:
        for box, unit in ((self.minutes, "minute"), (self.steps, "step")):  # "1 minute", never "1 minutes"
            suffix = f" {unit}" if box.value() == 1 else f" {plural(unit)}"
            if box.suffix() != suffix:
                box.setSuffix(suffix)
        minutes = self.by_minutes.isChecked()
        self.minutes.setEnabled(minutes)
        self.steps.setEnabled(not minutes)
        self.estimate.setText(self.estimate_text())
        self.changed.emit()
