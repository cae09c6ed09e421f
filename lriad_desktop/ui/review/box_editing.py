"""Editing the review on the image: the verdict flag that starts a box, drawing (B), redrawing the selected box
(B with a box selected), deleting it (Del), and giving a box its type (L). One object per window, built from
the controller, the image view, the review panel, the Draw Box action and the window's current image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QPoint
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from lriad_desktop.core.defect_kinds import display_name
from lriad_desktop.core.inspection.finding import Box, Verdict
from lriad_desktop.core.store.review import effective_defects
from lriad_desktop.ui.review.image_view import ImageView
from lriad_desktop.ui.review.queue_model import QueueEntry
from lriad_desktop.ui.review.review_panel import ReviewPanel

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController


class BoxEditing:
    """The window's review edits on boxes and types; `notice` says what happened or what is needed."""

    def __init__(self, controller: AppController, view: ImageView, panel: ReviewPanel, draw_action: QAction,
                 current_row: Callable[[], int | None], notice: Callable[[str], None]) -> None:
        self.controller, self.view, self.panel, self.draw_action = controller, view, panel, draw_action
        self.current_row, self.notice = current_row, notice
        self.replacing = -1  # the box B redraws (-1: B adds a new one)
        self.verdict_menu: QMenu | None = None  # the last Normal / Defective offer on an unreadable answer
        draw_action.toggled.connect(self.draw_toggled)
        view.boxDrawn.connect(self.box_drawn)
        panel.labelChosen.connect(self.label_chosen)

    def _entry(self) -> QueueEntry | None:
        row = self.current_row()
        return self.controller.queue.entry(row) if row is not None else None

    def _defect_count(self) -> int:
        e = self._entry()
        return len(effective_defects(e.finding, e.review.review if e.review else None)) if e is not None else 0

    def _with_row(self, fn: Callable[[int], object]) -> bool:
        row = self.current_row()
        if row is None:
            self.notice("Open an image first")
            return False
        return bool(fn(row))

    def toggle_verdict(self) -> None:
        """Flag the verdict; a new "defective" verdict starts drawing its box."""
        if self._with_row(self.controller.toggle_verdict):
            entry = self._entry()
            review = entry.review.review if entry and entry.review else None
            if review is not None and review.verdict is Verdict.ANOMALOUS and not any(d.box for d in review.defects):
                self.draw_action.setChecked(True)
                self.notice("Defective: drag over the defect to draw its box (Esc: no box)")

    def offer_verdict(self, anchor: QWidget, then_next: Callable[[], None]) -> bool:
        """Space on an unreadable answer (nothing to accept): offer Normal / Defective at once, beneath `anchor`.
        Normal writes the verdict and goes on (`then_next`); Defective writes it and starts drawing its box.
        False when the current image has a readable answer or a review (Space accepts as usual)."""
        entry = self._entry()
        if entry is None or entry.finding is None or entry.finding.verdict is not Verdict.UNPARSED or entry.review:
            return False
        if self.verdict_menu is not None:  # one offer at a time
            self.verdict_menu.deleteLater()
        menu = QMenu(anchor)
        menu.setObjectName("unreadable-verdict")
        normal = menu.addAction("Normal: the part is good")
        defective = menu.addAction("Defective: draw where")
        normal.triggered.connect(lambda: menu.close() and self._say(Verdict.NORMAL) and then_next())
        defective.triggered.connect(lambda: menu.close() and self._say(Verdict.ANOMALOUS))
        menu.setActiveAction(normal)
        self.verdict_menu = menu
        menu.popup(anchor.mapToGlobal(QPoint(0, anchor.height())))
        return True

    def _say(self, verdict: Verdict) -> bool:
        if not self._with_row(lambda row: self.controller.set_verdict(row, verdict)):
            return False
        if verdict is Verdict.ANOMALOUS:
            self.draw_action.setChecked(True)
            self.notice("Defective: drag over the defect to draw its box (Esc: no box)")
        return True

    def draw_toggled(self, on: bool) -> None:
        """B: draw mode; with a box selected, the drag redraws that box."""
        if on and self.view.image is None:
            self.draw_action.setChecked(False)
            return
        if on and not self.view.draw_mode:
            self.replacing = self.view.selected_index()
            if self.replacing >= 0:
                self.notice(f"Drag the right box for box {self.replacing + 1} (Esc: keep it as it is)")
        self.view.set_draw_mode(on)
        if on:
            self.view.setFocus()

    def box_drawn(self, box: Box) -> None:
        """A new box has no type until one is chosen; a redrawn box keeps its own. Either way it is selected."""
        replacing, self.replacing = self.replacing, -1
        count = self._defect_count()
        replacing = replacing if 0 <= replacing < count else -1
        if not self._with_row(lambda r: self.controller.add_box(r, box,
                                                                replacing=replacing if replacing >= 0 else None)):
            return
        index = replacing if replacing >= 0 else count
        self.view.select_defect(index)
        self.panel.select_defect(index)
        if replacing < 0:
            self.panel.focus_label()
            self.notice(f"Box {index + 1}: type or pick its type, Enter (Esc: later)")  # short: fits the status bar

    def delete_box(self) -> None:
        """Delete the selected box."""
        index = self.view.selected_index()
        if index < 0:
            index = self.panel.selected_defect()
        if index < 0:
            self.notice("Select a box to delete")
            return
        self._with_row(lambda r: self.controller.delete_defect(r, index))

    def label_chosen(self, label: str) -> None:
        """The type goes on the selected box (on the only one when there is one; a type alone when none)."""
        index = self.view.selected_index()
        if index < 0:
            index = self.panel.selected_defect()
        count = self._defect_count()
        if index < 0 and count > 1:
            self.notice("Select the box this type is for (click it), then choose the type")
            return
        index = max(index, 0)
        if self._with_row(lambda r: self.controller.set_label(r, index, label)) and count:
            self.view.select_defect(index)
            self.notice(f"Box {index + 1}: {display_name(label)}")  # in place of "has no type yet"
        self.view.setFocus()
