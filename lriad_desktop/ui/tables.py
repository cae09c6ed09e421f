"""The read-only tables of the app's dialogs (before/after figures, per-class success, versions, shortcuts)."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QWidget


def read_only_table(headers: list[str] | tuple[str, ...], rows: int = 0, parent: QWidget | None = None) -> QTableWidget:
    """A table with these column headers, no row numbers, that can't be edited."""
    table = QTableWidget(rows, len(headers), parent)
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    return table
