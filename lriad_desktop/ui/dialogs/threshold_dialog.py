"""The decision threshold of one object, set with evidence: that object's reviewed images (the
inspector's verdict as the truth, the model's anomaly score) as a ROC and a precision–recall curve,
and what the chosen threshold would do to them (caught, missed, false alarms, passed). Save writes
the threshold to the store; the queue re-decides that object's images at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QSlider, QVBoxLayout, QWidget)

from lriad_desktop.core.inspection.confidence import DEFAULT_THRESHOLD
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.evaluation.score_curves import (auroc, average_precision, confusion_at, pr_curve, pr_steps,
                                             roc_curve)
from lriad_desktop.core.store.review_store import ImageState, StoreError
from lriad_desktop.ui.dialogs.curve_chart import CurveChart

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

STEPS = 100  # the slider's resolution: thresholds 0.00 … 1.00


@dataclass(frozen=True)
class Evidence:
    """An object's reviewed images that have a score: scores and truths (True = defective)."""

    scores: tuple[float, ...]
    truth: tuple[bool, ...]

    @property
    def defective(self) -> int:
        return sum(self.truth)

    @property
    def good(self) -> int:
        return len(self.truth) - self.defective


def reviewed_evidence(states: Iterable[ImageState], object_name_for: Callable[[str], str], name: str) -> Evidence:
    """The reviewed images of object `name` whose finding has an anomaly score (unreadable answers left out)."""
    scores, truth = [], []
    for s in states:
        f = s.finding
        if (s.review is None or f is None or f.anomaly_score is None or f.verdict is Verdict.UNPARSED
                or object_name_for(s.image.path) != name):
            continue
        scores.append(f.anomaly_score)
        truth.append(s.review.review.verdict is Verdict.ANOMALOUS)
    return Evidence(tuple(scores), tuple(truth))


def _figure(name: str, value: float | None) -> str:
    return f"{name} —" if value is None else f"{name} {value:.3f}"


class ThresholdDialog(QDialog):
    """Choose, with the curves and confusion counts in view, and save one object's threshold."""

    def __init__(self, controller: AppController, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller, self.object_name = controller, object_name
        self.setWindowTitle(f"Decision threshold — {object_name}")
        try:
            states = controller.store.reviewed_states()
        except StoreError as err:
            controller.notice.emit(str(err))
            states = []
        self.evidence = reviewed_evidence(states, controller.object_name_for, object_name)
        ev = self.evidence
        self.summary = QLabel(self._summary())
        self.summary.setWordWrap(True)
        self.roc = CurveChart("ROC", "false alarm rate (good images called defective)", "defects caught",
                              diagonal=True)
        self.pr = CurveChart("Precision–recall", "recall (defects caught)", "precision")
        roc = roc_curve(ev.scores, ev.truth)
        pr = pr_curve(ev.scores, ev.truth) if roc else []
        need = "needs reviewed good and defective images of this object with a score"
        self.roc.set_curve([(x, y) for x, y, _ in roc], _figure("AUROC", auroc(ev.scores, ev.truth)), need)
        self.pr.set_curve(pr_steps(pr), _figure("AP", average_precision(ev.scores, ev.truth)), need)
        charts = QHBoxLayout()
        charts.addWidget(self.roc)
        charts.addWidget(self.pr)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 1.0)
        self.spin.setSingleStep(0.01)
        self.spin.setDecimals(2)
        self.spin.setAccessibleName("threshold")
        row = QHBoxLayout()
        row.addWidget(QLabel("Defective when the score is at least"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        self.counts = {key: QLabel() for key in ("tp", "fn", "fp", "tn", "rates")}
        grid = QGridLayout()
        for i, (key, text) in enumerate((("tp", "Defects caught"), ("fn", "Defects missed"),
                                         ("fp", "False alarms"), ("tn", "Good parts passed"))):
            grid.addWidget(QLabel(text), i // 2, (i % 2) * 2)
            self.counts[key].setStyleSheet("font-weight: 600;")
            grid.addWidget(self.counts[key], i // 2, (i % 2) * 2 + 1)
        grid.addWidget(self.counts["rates"], 2, 0, 1, 4)
        self.default_button = QPushButton(f"Default ({DEFAULT_THRESHOLD:.2f})")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(self.default_button, QDialogButtonBox.ButtonRole.ResetRole)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addLayout(charts, 1)
        lay.addLayout(row)
        lay.addLayout(grid)
        lay.addWidget(self.buttons)
        self.slider.valueChanged.connect(lambda v: self.set_threshold(v / STEPS))
        self.spin.valueChanged.connect(self.set_threshold)
        self.default_button.clicked.connect(lambda: self.set_threshold(DEFAULT_THRESHOLD))
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.threshold = -1.0
        self.set_threshold(controller.object_threshold(object_name))
        self.resize(760, 560)

    def _summary(self) -> str:
        ev = self.evidence
        if not ev.truth:
            return (f"No reviewed image of “{self.object_name}” has a score yet. Review some (Space accepts, V "
                    "flags) and the curves show what each threshold would do; until then the threshold is a guess.")
        return (f"{len(ev.truth)} reviewed images of “{self.object_name}” with a score: {ev.defective} defective, "
                f"{ev.good} good (the inspector's verdict is the truth). An image is called defective when its "
                "score is at least the threshold.")

    def set_threshold(self, value: float) -> None:
        """Move the threshold (slider, box, markers and counts follow)."""
        value = round(min(1.0, max(0.0, float(value))), 2)
        if value == self.threshold:
            return
        self.threshold = value
        for w, v in ((self.slider, round(value * STEPS)), (self.spin, value)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        ev = self.evidence
        c = confusion_at(ev.scores, ev.truth, value)
        for key in ("tp", "fn", "fp", "tn"):
            self.counts[key].setText(str(getattr(c, key)))
        fpr, rec, prec = c.false_positive_rate, c.recall, c.precision
        self.roc.set_marker((fpr, rec) if fpr is not None and rec is not None and self.roc.points else None)
        self.pr.set_marker((rec, prec) if rec is not None and prec is not None and self.pr.points else None)

        def pct(v: float | None) -> str:
            return "—" if v is None else f"{v * 100:.0f} %"

        self.counts["rates"].setText(f"Recall {pct(rec)} · precision {pct(prec)} · false alarm rate {pct(fpr)}")

    def save(self) -> None:
        """Write the threshold to the store (the default clears the object's own) and close."""
        value = None if self.threshold == DEFAULT_THRESHOLD else self.threshold
        if self.controller.set_threshold(self.object_name, value):
            self.accept()
