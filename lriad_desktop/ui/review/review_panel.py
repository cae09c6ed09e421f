"""The inspector's side: accept, or flag the verdict, correct the defect types and boxes; a note; the object name.

The label field follows the selected box: it shows that box's type (empty for a box without one yet, and
when no box is selected), so a stale label never goes onto another box.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from lriad_desktop.core.defect_kinds import display_name
from lriad_desktop.core.inspection.finding import Defect, Verdict
from lriad_desktop.core.store.review import ReviewKind
from lriad_desktop.ui.narrow_panel import breakable
from lriad_desktop.ui.review.finding_panel import _restyle, section_title
from lriad_desktop.ui.review.queue_model import QueueEntry
from lriad_desktop.ui.theme import icon
from lriad_desktop.ui.review.verdict_banner import when_text

STATE_TEXT = {ReviewKind.ACCEPT: ("✓ Accepted", "accept"), ReviewKind.FLAG: ("⚑ Verdict flagged", "flag"),
              ReviewKind.LABEL: ("✎ Defect type corrected", "correct"), ReviewKind.BOX: ("✎ Box corrected", "correct")}
NO_TYPE = "(no type yet)"


class ReviewPanel(QWidget):
    """Review controls for the current image; emits what the inspector asks for."""

    acceptClicked = Signal()
    verdictClicked = Signal(object)  # Verdict
    drawClicked = Signal()
    deleteClicked = Signal()
    defectSelected = Signal(int)
    labelChosen = Signal(str)
    noteEdited = Signal(str)
    objectNameEdited = Signal(str, str)  # scope ("folder" | "image"), name
    labelCancelled = Signal()  # Esc in the label field: back to the image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.state = QLabel("Not reviewed")
        self.state.setObjectName("reviewState")
        self.accept_button = QPushButton(icon("accept"), "  Accept  (Space)")
        self.accept_button.setObjectName("primary")
        self.accept_button.setToolTip("The model is right: save and go to the next image")
        self.normal_button = QPushButton("Normal")
        self.normal_button.setObjectName("verdictNormal")
        self.defect_button = QPushButton("Defective")
        self.defect_button.setObjectName("verdictDefect")
        for b, v in ((self.normal_button, Verdict.NORMAL), (self.defect_button, Verdict.ANOMALOUS)):
            b.setCheckable(True)
            b.setToolTip("Flag the verdict (V toggles)")
            b.clicked.connect(lambda _=False, verdict=v: self.verdictClicked.emit(verdict))
        verdicts = QHBoxLayout()
        verdicts.addWidget(self.normal_button)
        verdicts.addWidget(self.defect_button)
        self.defects = QListWidget()
        self.defects.setObjectName("defects")
        self.defects.setMaximumHeight(78)
        self.defects.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.defects.currentRowChanged.connect(self.defectSelected.emit)
        self.draw_button = QPushButton(icon("draw-box"), " Draw box (B)")
        self.delete_button = QPushButton(icon("delete"), " Delete (Del)")
        self.draw_button.clicked.connect(self.drawClicked.emit)
        self.delete_button.clicked.connect(self.deleteClicked.emit)
        box_row = QHBoxLayout()
        box_row.addWidget(self.draw_button)
        box_row.addWidget(self.delete_button)
        self.label_box = QComboBox()
        self.label_box.setEditable(True)
        self.label_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.label_box.lineEdit().setPlaceholderText("select a box, then its type (L), Enter")
        self.label_box.installEventFilter(self)  # keys reach the combo box, which hands them to its line edit
        self.label_box.lineEdit().installEventFilter(self)
        self.label_box.lineEdit().returnPressed.connect(self._label_entered)
        self.label_box.activated.connect(lambda _i: self._label_entered())
        self.note = QLineEdit()
        self.note.setPlaceholderText("optional note for this image, Enter")
        self.note.editingFinished.connect(self._note_finished)
        self.object_name = QLineEdit()
        self.object_name.setPlaceholderText("e.g. metal nut")
        self.object_scope = QComboBox()
        self.object_scope.addItem("for this folder", "folder")
        self.object_scope.addItem("for this image", "image")
        self.object_name.editingFinished.connect(self._object_finished)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.addWidget(QLabel("Label"), 0, 0)
        grid.addWidget(self.label_box, 0, 1)
        grid.addWidget(QLabel("Note"), 1, 0)
        grid.addWidget(self.note, 1, 1)
        obj = QHBoxLayout()
        obj.addWidget(self.object_name, 1)
        obj.addWidget(self.object_scope)
        self.object_hint = QLabel()
        self.object_hint.setObjectName("meta")
        self.object_hint.setWordWrap(True)
        self.object_scope.currentIndexChanged.connect(lambda _i: self._show_object_hint())
        self._object_hints: dict[str, str] = {}
        layout.addWidget(section_title("Review"))
        layout.addWidget(self.state)
        layout.addWidget(self.accept_button)
        layout.addLayout(verdicts)
        layout.addWidget(section_title("Defects"))
        layout.addWidget(self.defects)
        layout.addLayout(box_row)
        layout.addLayout(grid)
        layout.addWidget(section_title("Object (prompt)"))
        layout.addLayout(obj)
        layout.addWidget(self.object_hint)
        self.accept_button.clicked.connect(self.acceptClicked.emit)
        self._note_shown = ""
        self._object_shown = ""
        self._defects: list[Defect] = []
        self._path: str | None = None
        self._label_waiting = False  # the app put the cursor in the label field and nothing was typed yet

    def show_entry(self, entry: QueueEntry | None, defects: Sequence[Defect], verdict: Verdict | None,
                   object_name: str, object_scope: str, labels: Sequence[str]) -> None:
        """Show the review state of `entry` with the defects and verdict in force."""
        enabled = entry is not None and not entry.error
        for w in (self.normal_button, self.defect_button, self.draw_button, self.label_box, self.note,
                  self.defects, self.delete_button):
            w.setEnabled(enabled)
        self.accept_button.setEnabled(enabled and entry.finding is not None
                                      and entry.finding.verdict is not Verdict.UNPARSED)
        self.object_name.setEnabled(entry is not None)
        review = entry.review if entry is not None else None
        if review is None:
            self.state.setText("Not reviewed yet")
            self.state.setProperty("kind", "")
        else:
            text, kind = STATE_TEXT[review.review.kind]
            self.state.setText(f"{text} by {review.reviewer} · {when_text(review.created_at)}")
            self.state.setProperty("kind", kind)
        _restyle(self.state)
        self.normal_button.setChecked(verdict is Verdict.NORMAL)
        self.defect_button.setChecked(verdict is Verdict.ANOMALOUS)
        current = self.defects.currentRow() if entry is not None and entry.path == self._path else -1
        self._path = entry.path if entry is not None else None
        self.defects.blockSignals(True)
        self.defects.clear()
        for i, d in enumerate(defects):
            where = "no box" if d.box is None else "[{:.0f}, {:.0f}, {:.0f}, {:.0f}]".format(*d.box.as_list())
            item = QListWidgetItem(f"{i + 1}.  {display_name(d.label) or NO_TYPE}    {where}")
            self.defects.addItem(item)
        self.defects.setCurrentRow(current if 0 <= current < len(defects) else -1)
        self.defects.blockSignals(False)
        self._defects = list(defects)
        self.set_labels(labels)
        self._sync_label()
        note = review.review.note if review is not None else ""
        if not self.note.hasFocus():
            self.note.setText(note)
        self._note_shown = note
        if not self.object_name.hasFocus():
            self.object_name.setText(object_name)
            self.object_scope.setCurrentIndex(1 if object_scope == "image" else 0)
        self._object_shown = object_name

    def refresh_icons(self) -> None:
        """Redraw the button icons in the colours of the theme in force."""
        for button, name in ((self.accept_button, "accept"), (self.draw_button, "draw-box"),
                             (self.delete_button, "delete")):
            button.setIcon(icon(name))

    def set_labels(self, labels: Sequence[str]) -> None:
        """The defect types offered in the label picker."""
        text = self.label_box.currentText()
        self.label_box.blockSignals(True)
        self.label_box.clear()
        self.label_box.addItems(list(labels))
        self.label_box.setEditText(text)
        self.label_box.blockSignals(False)

    def select_defect(self, index: int) -> None:
        """Select the defect at `index` in the list (-1: none); the label field follows."""
        self.defects.blockSignals(True)
        self.defects.setCurrentRow(index if 0 <= index < len(self._defects) else -1)
        self.defects.blockSignals(False)
        self._sync_label()

    def selected_defect(self) -> int:
        """The defect selected in the list, or -1."""
        row = self.defects.currentRow()
        return row if 0 <= row < len(self._defects) else -1

    def _sync_label(self, force: bool = False) -> None:
        if self.label_box.lineEdit().hasFocus() and not force:
            return  # the inspector is typing a type: keep it
        row = self.selected_defect()
        self.label_box.setEditText(display_name(self._defects[row].label) if row >= 0 else "")

    def set_object_hints(self, hints: dict[str, str]) -> None:
        """What setting the object name changes, per scope ("folder", "image"): shown under the field."""
        self._object_hints = dict(hints)
        self._show_object_hint()

    def _show_object_hint(self) -> None:
        self.object_hint.setText(breakable(self._object_hints.get(self.object_scope.currentData() or "folder", "")))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in the label field gives the keys back to the image (the type is left as it was). L, pressed
        before anything is typed in the field the app put the cursor in (after a box is drawn, or by L), is the
        key that asks for the field, not a letter: it is already there (a second L types an "l")."""
        if watched is not self.label_box and watched is not self.label_box.lineEdit():
            return super().eventFilter(watched, event)
        if event.type() == QEvent.Type.FocusOut:
            self._label_waiting = False
        if event.type() != QEvent.Type.KeyPress:
            return super().eventFilter(watched, event)
        waiting, self._label_waiting = self._label_waiting, False
        if event.key() == Qt.Key.Key_Escape:
            self._sync_label(force=True)
            self.labelCancelled.emit()
            return True
        if waiting and event.key() == Qt.Key.Key_L and event.text() == "l":
            return True
        return super().eventFilter(watched, event)

    def focus_label(self) -> None:
        """Put the cursor in the label picker (its text selected, so typing replaces it)."""
        self.label_box.setFocus()
        self.label_box.lineEdit().selectAll()
        self._label_waiting = True  # nothing typed here yet: an L now is the key, not a letter

    def focus_note(self) -> None:
        """Put the cursor in the note."""
        self.note.setFocus()
        self.note.selectAll()

    def _label_entered(self) -> None:
        text = self.label_box.currentText().strip()
        if text:
            self.labelChosen.emit(text)

    def _note_finished(self) -> None:
        if self.note.text().strip() != self._note_shown:
            self._note_shown = self.note.text().strip()
            self.noteEdited.emit(self._note_shown)

    def _object_finished(self) -> None:
        name = self.object_name.text().strip()
        if name != self._object_shown:
            self._object_shown = name
            self.objectNameEdited.emit(self.object_scope.currentData(), name)
