"""Asking the inspector's name once, in the side panel (never a dialog in the way of the keys): it signs every
review. It stays editable in Settings → Inspection."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget


class ReviewerPrompt(QFrame):
    """'Who is reviewing?' with the login name proposed; `named` carries the answer ('' = keep the login)."""

    named = Signal(str)

    def __init__(self, login: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewerPrompt")
        self.question = QLabel("<b>Who is reviewing?</b> Your name signs each accept, flag and correction "
                               "(and the exports). You can change it in Settings.")
        self.question.setWordWrap(True)
        self.name = QLineEdit()
        self.name.setPlaceholderText(login)
        self.name.returnPressed.connect(self._save)
        self.ok = QPushButton("Save")
        self.ok.clicked.connect(self._save)
        self.skip = QPushButton("Use “" + login + "”")
        self.skip.clicked.connect(lambda: self._answer(""))
        row = QHBoxLayout()
        row.addWidget(self.name, 1)
        row.addWidget(self.ok)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.addWidget(self.question)
        lay.addLayout(row)
        lay.addWidget(self.skip)

    def _save(self) -> None:
        self._answer(self.name.text().strip())

    def _answer(self, name: str) -> None:
        self.hide()
        self.named.emit(name)
