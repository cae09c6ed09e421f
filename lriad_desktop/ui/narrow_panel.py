"""A narrow panel that stays usable: a one-line label that elides in the middle (a long file name keeps its start
and its end), long names made breakable for word-wrapped labels, a scroll area whose content is never wider than
its viewport (a long name can't push the side panel's buttons and fields off screen), and that scrolls to the field
the keyboard goes to (the label field after a box is drawn)."""

from __future__ import annotations

import re

from PySide6.QtCore import QObject, QSize, Qt, Slot
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QApplication, QLabel, QLayout, QScrollArea, QSizePolicy, QWidget

ZERO_WIDTH_SPACE = "\u200b"
LONG_WORD = 18  # a word longer than this gets break opportunities
_BREAK_AFTER = re.compile(r"([_/\\.\-·,;:])")


def breakable(text: str) -> str:
    """`text` with a zero-width space after the separators ('_', '/', '.', '-') of each word longer than
    `LONG_WORD`, so a word-wrapped label can wrap a long file or folder name instead of growing sideways."""
    words = re.split(r"(\s+)", text)
    return "".join(_BREAK_AFTER.sub(r"\1" + ZERO_WIDTH_SPACE, w) if len(w) > LONG_WORD else w for w in words)


def plain(text: str) -> str:
    """`text` without the break opportunities `breakable` put in (what the label says, for tests and copies)."""
    return text.replace(ZERO_WIDTH_SPACE, "")


class ElidedLabel(QLabel):
    """One line of text elided in the middle when the label is narrower than it; the full text is the tooltip.
    It asks for no width of its own, so it never widens its column."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, super().minimumSizeHint().height())

    def elided(self) -> str:
        """The text as painted at the label's current width."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, self.contentsRect().width())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()) | int(Qt.AlignmentFlag.AlignVCenter), self.elided())


def fit_to_width(scroll: QScrollArea) -> None:
    """Make `scroll` (with a widget and `setWidgetResizable(True)`) scroll up and down only: its content takes
    the viewport's width whatever its labels would like, and a label too long for it wraps, elides or clips
    instead of pushing the controls beside and below it out of sight."""
    content = scroll.widget()
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    policy = content.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    content.setSizePolicy(policy)
    layout = content.layout()
    if layout is not None:
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)


class _FocusFollower(QObject):
    """Lives as long as its scroll area (a child of it), so the application's signal stops reaching it with it."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self.scroll = scroll

    @Slot(QWidget, QWidget)
    def focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        content = self.scroll.widget()
        if new is not None and content is not None and content.isAncestorOf(new):
            self.scroll.ensureWidgetVisible(new, 0, 40)


def follow_focus(scroll: QScrollArea) -> None:
    """Scroll `scroll` to any widget inside it that takes the keyboard focus (the app moving the cursor to a
    field below the fold, such as the label field after a box is drawn, shows that field)."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        app.focusChanged.connect(_FocusFollower(scroll).focus_changed)
