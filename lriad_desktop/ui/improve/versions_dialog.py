"""Model versions: every base model and adapter the store knows, its state (active, discarded, deleted,
recovered), Activate and Roll back (to the active version's parent) in one click each, Restore for a
discarded one. Activating a version the guard recommends discarding asks once, naming what fell."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.store.review_store import StoreError
from lriad_desktop.core.training_runs.verdict import version_verdict
from lriad_desktop.core.store.adapter_versions import (ModelVersion, files_present, is_available, resolve_base, rollback_target,
                                         version_state)
from lriad_desktop.ui.improve.run_results import confirm_despite_verdict
from lriad_desktop.ui.tables import read_only_table
from lriad_desktop.ui.theme import bring_to_front, colour
from lriad_desktop.ui.improve.training_text import key_metrics

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

COLUMNS = ("", "Version", "Base model", "Adapter", "Parent", "Data rev.", "Created", "Flagged / held-out F1")


def local_time(iso: str) -> str:
    """'2025-05-01 14:03' in local time from a stored UTC ISO time."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


class VersionsDialog(QDialog):
    """The version list with Activate and Roll back; follows activations made anywhere."""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.versions: list[ModelVersion] = []
        self.setWindowTitle("Model versions")
        self.resize(1100, 360)
        intro = QLabel("The active version inspects every new image. Activate any version whose adapter still "
                       "exists; Roll Back goes to the version the active one was trained from. A discarded version "
                       "stays listed; Restore it to activate it again.")
        intro.setObjectName("meta")
        intro.setWordWrap(True)
        self.table = read_only_table(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.activate_selected())
        self.details = QLabel()
        self.details.setObjectName("meta")
        self.details.setWordWrap(True)
        self.details.setMinimumHeight(self.details.fontMetrics().lineSpacing() * 3 + 6)  # long paths: never clipped
        self.activate_button = QPushButton("Activate")
        self.activate_button.setObjectName("primary")
        self.rollback_button = QPushButton("Roll Back")
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip("Undo the discard of the selected version")
        close = QPushButton("Close")
        self.activate_button.clicked.connect(self.activate_selected)
        self.rollback_button.clicked.connect(self.roll_back)
        self.restore_button.clicked.connect(self.restore_selected)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.rollback_button)
        buttons.addWidget(self.restore_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 14, 16, 14)
        lay.addWidget(intro)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.details)
        lay.addLayout(buttons)
        controller.versionsChanged.connect(self.refresh)
        controller.training.finished.connect(lambda _outcome: self.refresh())

    def refresh(self) -> None:
        """Read the versions again (newest first), keeping the selection."""
        selected = self.selected_version()
        try:
            self.versions = list(reversed(self.controller.store.model_versions()))
        except StoreError as err:
            self.details.setText(str(err))
            return
        names = {v.id: v.name for v in self.versions}
        self.table.setRowCount(len(self.versions))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for r, v in enumerate(self.versions):
            usable = is_available(v)
            base = resolve_base(v.base_path)
            base_text = f"{base.name} (bundled)" if base == bundled_model_dir() else base.name
            state = version_state(v)
            if v.adapter_path is None:
                adapter = "— (base model)"
            else:
                adapter = Path(v.adapter_path).name + ("  (deleted)" if state == "deleted" else "")
            status = {"active": "● active", "ready": "", "discarded": "discarded"}.get(state, state)
            cells = [status, v.name, base_text, adapter,
                     names.get(v.parent_id, "") if v.parent_id is not None else "",
                     "" if v.data_revision is None else str(v.data_revision), local_time(v.created_at),
                     self._figures(v)]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.id)
                item.setToolTip(f"base {v.base_path}\nadapter {v.adapter_path or '(none)'}")
                if v.active:
                    item.setFont(bold)
                    if c == 0:
                        item.setForeground(colour("ok"))
                elif not usable:
                    item.setForeground(colour("muted"))
                self.table.setItem(r, c, item)
        row = next((r for r, v in enumerate(self.versions) if selected and v.id == selected.id),
                   next((r for r, v in enumerate(self.versions) if v.active), 0))
        if self.versions:
            self.table.selectRow(row)
        self._update_buttons()

    def _figures(self, v: ModelVersion) -> str:
        """Its key figures, and what fell on the held-out images when the guard would discard it."""
        verdict = version_verdict(v.metrics, self.controller.settings.improve_tolerance)
        fell = ", ".join(f"{d.words} fell" for d in verdict.drops) if verdict is not None and verdict.discard else ""
        return " · ".join(bit for bit in (key_metrics(v), f"held out: {fell}" if fell else "") if bit)

    def selected_version(self) -> ModelVersion | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.versions[rows[0].row()] if rows and rows[0].row() < len(self.versions) else None

    def _active(self) -> ModelVersion | None:
        return next((v for v in self.versions if v.active), None)

    def _update_buttons(self) -> None:
        v = self.selected_version()
        self.activate_button.setEnabled(v is not None and not v.active and is_available(v))
        self.restore_button.setVisible(v is not None and v.discarded)
        self.restore_button.setEnabled(v is not None and v.discarded and files_present(v))
        self.restore_button.setToolTip("Undo the discard of the selected version" if v is None or files_present(v)
                                       else "Its adapter folder was deleted when it was discarded: nothing to restore")
        target = rollback_target(list(reversed(self.versions)), self._active())
        self.rollback_button.setEnabled(target is not None)
        self.rollback_button.setToolTip(f"Activate {target.name}, the version before the active one"
                                        if target else "No earlier version to go back to")
        if v is None:
            self.details.setText("")
            return
        bits = [f"{v.name}: base {v.base_path}", f"adapter {v.adapter_path}" if v.adapter_path else "no adapter"]
        if v.discarded:
            when = f" on {local_time(v.discarded_at)}" if v.discarded_at else ""
            bits.append(f"discarded{when}" + (": restore it to activate it" if files_present(v)
                                              else ", its adapter folder deleted"))
        elif v.adapter_path and not is_available(v):
            bits.append("its adapter was deleted, so it can't be activated")
        if v.recovered:
            bits.append(f"recovered: {(v.metrics['recovered'] or {}).get('reason', '')}")
        elif v.adapter_path and "before" in v.metrics and "after" not in v.metrics:
            bits.append("no \"after\" figures yet: its training run is still evaluating it, or was interrupted")
        metrics = self._figures(v)
        if metrics:
            bits.append(metrics)
        self.details.setText(" · ".join(bits))

    def activate_selected(self) -> None:
        """Activate the selected version."""
        v = self.selected_version()
        if v is None or v.active:
            return
        verdict = version_verdict(v.metrics, self.controller.settings.improve_tolerance)
        if confirm_despite_verdict(self, verdict, v.name):
            self.controller.activate_version(v.id)

    def restore_selected(self) -> None:
        """Undo the discard of the selected version."""
        v = self.selected_version()
        if v is not None and v.discarded:
            self.controller.restore_version(v.id)

    def roll_back(self) -> None:
        """Activate the active version's parent (or the newest usable version before it)."""
        target = rollback_target(list(reversed(self.versions)), self._active())
        if target is not None and self.controller.activate_version(target.id):
            self.controller.notice.emit(f"Rolled back to {target.name}")


class VersionsAction:
    """Model → Versions: the model in use is registered first (so it is always listed), then the dialog."""

    def __init__(self, controller: AppController, parent: QWidget, notice: Callable[[str], None]) -> None:
        self.controller, self.parent, self.notice = controller, parent, notice
        self._dialog: VersionsDialog | None = None

    def dialog(self) -> VersionsDialog:
        """The versions dialog, made on first use (one per window)."""
        if self._dialog is None:
            self._dialog = VersionsDialog(self.controller, self.parent)
        return self._dialog

    def show(self) -> None:
        """Register the model in use, then show the list."""
        try:
            self.controller.register_model_in_use()
        except StoreError as err:
            self.notice(str(err))
            return
        dialog = self.dialog()
        dialog.refresh()
        bring_to_front(dialog)

    def close(self) -> None:
        """Close the dialog (the window is closing)."""
        if self._dialog is not None:
            self._dialog.close()
