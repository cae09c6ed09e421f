"""A finished training run's before/after figures, as the Improve panel shows them: the held-out images
first (the only fair test: accepted images the run never trained on), with their count, or "can't judge
yet" on too few; the guard's recommendation (Discard when they lost more than the tolerance, naming the
figure); what the table would hide said in words (boxes that vanished, figures that fell, during the run or
after it); then, apart and labelled so, the flagged images it trained on."""

from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QMessageBox, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from lriad_desktop.core.training_runs.verdict import DEFAULT_TOLERANCE_POINTS, RunVerdict, run_verdict
from lriad_desktop.core.training_runs.progress import COMPARED, ComparisonRow, Fall, RunJudgement, compare, judge
from lriad_desktop.ui.tables import read_only_table
from lriad_desktop.ui.theme import colour
from lriad_desktop.ui.improve.training_text import change_text, held_out_headline, trained_on_title, warnings

NOTE = ("Activate makes the very next inspection use the new version; the previous one stays one click away in "
        "Model Versions.")


# `training.recipes.flags` files a defective image whose review names no type under this class
UNLABELLED_CLASS = "defect"


def class_name(defect_class: str) -> str:
    """A class as the table says it: 'all classes', '(no label)' for defective images nobody gave a type."""
    return {"all": "all classes", UNLABELLED_CLASS: "(no label)"}.get(defect_class, defect_class)


def _table() -> QTableWidget:
    table = read_only_table(["Class", "Images"] + [f"{title}  (before → after)" for _, title in COMPARED])
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    for column in range(2):
        table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    table.setAlternatingRowColors(True)
    return table


def _label(name: str, bold: bool = False) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


def confirm_despite_verdict(parent: QWidget, verdict: RunVerdict | None, name: str) -> bool:
    """Activating a version the guard recommends discarding asks once, naming what fell; anything else goes."""
    if verdict is None or not verdict.discard:
        return True
    answer = QMessageBox.question(
        parent, "Activate despite the drop?",
        f"On the {verdict.held_out} held-out images {name} lost {verdict.fell()}, more than the "
        f"{verdict.tolerance_points:g} points allowed. Activate it anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class RunResults(QWidget):
    """The before/after section of the Improve panel; `show_run` fills it from a run's scores."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.judgement: RunJudgement | None = None
        self.verdict: RunVerdict | None = None
        self.shortfall = _label("notice")  # a run that trained less than it was asked says so first
        self.recommendation = _label("runVerdict")
        self.headline = _label("", bold=True)
        self.warnings = _label("notice")
        self.held_out = _table()
        self.trained_title = _label("sectionTitle")
        self.trained_on = _table()
        self.note = _label("meta")
        self.note.setText(NOTE)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        held_title = QLabel("HELD OUT: THE FAIR TEST")
        held_title.setObjectName("sectionTitle")
        for widget in (self.shortfall, held_title, self.recommendation, self.headline, self.held_out, self.warnings,
                       self.trained_title, self.trained_on, self.note):
            lay.addWidget(widget)

    def show_run(self, before: dict[str, Any], after: dict[str, Any], during: tuple[Fall, ...] = (),
                 tolerance: float = DEFAULT_TOLERANCE_POINTS, trained_what: str = "",
                 shortfalls: Sequence[str] = ()) -> None:
        """Show a run's scores (split → class → figures, as `lriad train` reports them), the falls seen
        during it, and the guard's recommendation at `tolerance` points; `trained_what` says what the trained-on
        images are ('1 flag, 1 box correction'); `shortfalls`, how the run trained less than it was asked."""
        self.shortfall.setText("Trained less than asked. " + " ".join(shortfalls) if shortfalls else "")
        self.shortfall.setVisible(bool(shortfalls))
        j = self.judgement = judge(before, after, during)
        v = self.verdict = run_verdict(before, after, tolerance)
        self.recommendation.setText(v.sentence())
        self.recommendation.setProperty("recommend", v.recommendation)
        self.recommendation.style().unpolish(self.recommendation)
        self.recommendation.style().polish(self.recommendation)
        rows = compare(before, after)
        held = [r for r in rows if r.split == "Held out"]
        self.headline.setText(held_out_headline(j, held[0].changes if held else ()))
        self.headline.setStyleSheet(f"color: {colour('text' if j.judgeable else 'warn').name()};")
        self._fill(self.held_out, held, coloured=j.judgeable)
        self.held_out.setVisible(bool(held))
        said = warnings(j)
        self.warnings.setText("\n".join(said))
        self.warnings.setVisible(bool(said))
        self.trained_title.setText(trained_on_title(j, trained_what))
        self._fill(self.trained_on, [r for r in rows if r.split == "Flagged"], coloured=False)

    @staticmethod
    def _fill(table: QTableWidget, rows: list[ComparisonRow], coloured: bool) -> None:
        """One line a class; a change is green or red only where it means something (enough held-out images)."""
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = [QTableWidgetItem(class_name(row.defect_class)),
                     QTableWidgetItem(str(row.n))]
            for change in row.changes:
                item = QTableWidgetItem(change_text(change))
                delta = change.delta
                if coloured and delta is not None and abs(delta) >= 0.005:
                    item.setForeground(colour("ok" if delta > 0 else "danger"))
                cells.append(item)
            for c, item in enumerate(cells):
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, c, item)
        table.resizeRowsToContents()
        header = table.horizontalHeader().sizeHint().height()
        table.setFixedHeight(header + sum(table.rowHeight(r) for r in range(len(rows))) + 4)
