"""The queue list: thumbnail, file name, folder, a coloured status chip, a *new* chip for an image that landed
in a watched folder and was not looked at yet, a *needs review* chip when the anomaly score lies near the
object's threshold, and the score ("—" when there is none) per image."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from lriad_desktop.core.inspection.confidence import format_score
from lriad_desktop.core.inspection.finding import Verdict, verdict_word
from lriad_desktop.core.anomaly_map.decision import map_led
from lriad_desktop.core.store.review import ImageStatus, agreement
from lriad_desktop.ui.review.queue_model import THUMB_SIZE, QueueEntry, QueueModel
from lriad_desktop.ui.theme import colour

ROW_HEIGHT = THUMB_SIZE + 12

# status → (chip text, theme colour token); until reviewed the chip is the model's verdict, then the review's
STATUS_STYLE: dict[ImageStatus, tuple[str, str]] = {
    ImageStatus.NOT_INSPECTED: ("not inspected", "muted"),
    ImageStatus.NORMAL: ("model: normal", "ok"),
    ImageStatus.DEFECT: ("model: defective", "danger"),
    ImageStatus.UNPARSED: ("unreadable answer", "warn"),
    ImageStatus.ERROR: ("error", "danger"),
    ImageStatus.ACCEPTED_NORMAL: ("✓ normal", "ok"),
    ImageStatus.ACCEPTED_DEFECTIVE: ("✓ defective", "danger"),
    ImageStatus.FLAGGED: ("⚑ flagged", "accent"),
    ImageStatus.CORRECTED: ("✎ corrected", "accent"),
}


def chip_text(entry: QueueEntry) -> tuple[str, str]:
    """The status chip of a row: its text and colour token (a flag says the verdict it sets)."""
    text, token = STATUS_STYLE[entry.status]
    if entry.status in (ImageStatus.NORMAL, ImageStatus.DEFECT) and map_led(entry.model_finding):
        text = text.replace("model:", "map:")  # the demo model's answer is only a guess: the map decided
    if entry.status is ImageStatus.FLAGGED and entry.review is not None:
        text += " " + verdict_word(entry.review.review.verdict)
    return text, token


def agreement_chip(entry: QueueEntry) -> tuple[str, str] | None:
    """For an image inspected again since its review: whether the new answer agrees ('✓ agrees', '✗ says
    normal'), else None."""
    if not entry.reinspected or entry.finding is None or entry.review is None:
        return None
    a = agreement(entry.review.review, entry.finding)
    return ("✓ agrees", "ok") if a.agrees else (f"✗ {a.why}", "danger")


class QueueDelegate(QStyledItemDelegate):
    """Paints one queue row."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(240, ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        entry: QueueEntry | None = index.data(QueueModel.EntryRole)
        if entry is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(r, colour("accent_soft"))
            painter.fillRect(QRect(r.left(), r.top(), 3, r.height()), colour("accent"))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(r, colour("hover"))
        thumb_rect = QRect(r.left() + 8, r.top() + 6, THUMB_SIZE, THUMB_SIZE)
        painter.fillRect(thumb_rect, colour("canvas"))
        thumb: QImage | None = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(thumb, QImage) and not thumb.isNull():
            scaled = thumb.size().scaled(thumb_rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(thumb_rect.center())
            painter.drawImage(target, thumb)
        elif isinstance(thumb, QImage):  # made and failed: the file can't be read
            painter.setPen(colour("muted"))
            painter.drawText(thumb_rect, Qt.AlignmentFlag.AlignCenter, "✕")
        text_left = thumb_rect.right() + 10
        width = r.right() - text_left - 8
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(colour("text"))
        fm = QFontMetrics(font)
        painter.drawText(QRect(text_left, r.top() + 8, width, fm.height()), Qt.AlignmentFlag.AlignLeft,
                         fm.elidedText(entry.name, Qt.TextElideMode.ElideMiddle, width))
        painter.setFont(option.font)
        painter.setPen(colour("muted"))
        fm = QFontMetrics(option.font)
        folder = Path(entry.path).parent.name
        line = QRect(text_left, r.top() + 10 + fm.height(), width, fm.height())
        decided = entry.finding
        if decided is not None and decided.verdict is not Verdict.UNPARSED:  # the score, right of the folder
            score = "score " + format_score(decided.anomaly_score)
            painter.drawText(line, Qt.AlignmentFlag.AlignRight, score)
            line.setWidth(max(0, width - fm.horizontalAdvance(score) - 8))
        painter.drawText(line, Qt.AlignmentFlag.AlignLeft, fm.elidedText(folder, Qt.TextElideMode.ElideMiddle,
                                                                          line.width()))
        top = r.bottom() - 6 - fm.height() - 2
        text, token = chip_text(entry)
        if entry.busy:
            text, token = "inspecting…" if entry.finding is None else text + " · re-inspecting", "warn"
        right = self._chip(painter, text, token, text_left, top, option.font)
        if entry.landed and right + 40 < r.right():  # landed in a watched folder, not looked at yet
            right = self._chip(painter, "new", "accent", right + 6, top, option.font, r.right() - 6 - right - 6)
        if entry.needs_review and right + 40 < r.right():  # the score sits in the band around the threshold
            right = self._chip(painter, "needs review", "warn", right + 6, top, option.font, r.right() - 6 - right - 6)
        mark = None if entry.busy else agreement_chip(entry)
        if mark is not None and right + 40 < r.right():
            self._chip(painter, mark[0], mark[1], right + 4, top, option.font, r.right() - 6 - right - 4)
        painter.restore()

    def _chip(self, painter: QPainter, text: str, token: str, left: int, top: int, font: QFont,
              room: int = 0) -> int:
        """Paint one rounded chip; returns its right edge. `room` > 0 elides the text to fit."""
        small = QFont(font)
        small.setPointSizeF(max(7.0, font.pointSizeF() - 1.0))
        small.setBold(True)
        fm = QFontMetrics(small)
        if room > 0:
            text = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(room - 14, 10))
        rect = QRectF(left, top, fm.horizontalAdvance(text) + 14, fm.height() + 2)
        c = colour(token)
        bg = QColor(c)
        bg.setAlpha(40)
        path = QPainterPath()
        path.addRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.fillPath(path, bg)
        painter.setPen(c)
        painter.setFont(small)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        return int(rect.right())


class QueueView(QListView):
    """The image queue: fast for 10,000 rows (uniform rows, batched layout, thumbnails on demand)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queue")
        self.setItemDelegate(QueueDelegate(self))
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the review loop, not the list
        self.setMinimumWidth(220)
        self._keep: Callable[[QueueEntry], bool] | None = None

    def setModel(self, model: QueueModel) -> None:  # type: ignore[override]
        super().setModel(model)
        model.dataChanged.connect(lambda top, bottom, _roles=(): self.refilter(top.row(), bottom.row()))
        model.rowsInserted.connect(lambda _parent, first, last: self.refilter(first, last))
        model.layoutChanged.connect(lambda *_: self.refilter())
        model.modelReset.connect(self.refilter)

    def set_filter(self, keep: Callable[[QueueEntry], bool] | None) -> None:
        """Show only the rows whose entry `keep` accepts (None: every row), re-checked as entries change."""
        self._keep = keep
        self.refilter()

    def refilter(self, first: int = 0, last: int | None = None) -> None:
        """Hide or show rows `first`…`last` (default: all) by the filter."""
        model = self.model()
        if not isinstance(model, QueueModel):
            return
        last = model.rowCount() - 1 if last is None else min(last, model.rowCount() - 1)
        for row in range(max(0, first), last + 1):
            self.setRowHidden(row, self._keep is not None and not self._keep(model.entry(row)))
