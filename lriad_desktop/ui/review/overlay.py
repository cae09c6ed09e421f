"""What is drawn over the image: the image itself (a pyramid), defect boxes with label chips.

Scene coordinates are original-image pixels, so a finding's box is placed as it is.
"""

from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsRectItem, QGraphicsSceneHoverEvent, QGraphicsSceneMouseEvent,
                               QStyleOptionGraphicsItem, QWidget)

from lriad_desktop.core.defect_kinds import display_name
from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.ui.imaging import DisplayImage

HANDLE_PX = 8.0  # corner handle size and grab distance, in screen pixels
MIN_BOX_PX = 2.0  # a box smaller than this (image pixels) is not a box


class PyramidItem(QGraphicsItem):
    """Paints the pyramid level that matches the zoom, only where exposed (an 8000×6000 image stays smooth)."""

    def __init__(self, image: DisplayImage) -> None:
        super().__init__()
        self.image = image
        self._rect = QRectF(0, 0, image.size[0], image.size[1])
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(-1)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        level = self.image.levels[0]
        for candidate in self.image.levels[1:]:  # smallest level still at least as sharp as the screen
            if candidate.width() / self._rect.width() >= lod:
                level = candidate
        scale = level.width() / self._rect.width()
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        source = QRectF(target.x() * scale, target.y() * scale, target.width() * scale, target.height() * scale)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 3.0)  # show pixels when zoomed in
        painter.drawImage(target, level, source)


class LabelChip(QGraphicsItem):
    """The defect type in a coloured chip above a box; keeps its size on screen at any zoom."""

    def __init__(self, text: str, color: QColor, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.text, self.color = text, color
        self.font = QFont()
        self.font.setPointSizeF(9.0)
        self.font.setBold(True)
        fm = QFontMetricsF(self.font)
        self._w, self._h = fm.horizontalAdvance(text) + 10, fm.height() + 4
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def boundingRect(self) -> QRectF:
        return QRectF(0, -self._h, self._w, self._h)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath()
        path.addRoundedRect(self.boundingRect(), 3, 3)
        painter.fillPath(path, self.color)
        painter.setFont(self.font)
        painter.setPen(QColor("white"))
        painter.drawText(self.boundingRect(), Qt.AlignmentFlag.AlignCenter, self.text)


class BoxItem(QGraphicsRectItem):
    """One defect box. Editable boxes move (drag inside), resize (drag a corner) and select (for Delete)."""

    def __init__(self, index: int, box: Box, label: str, color: QColor, width: float, bounds: QRectF, *,
                 editable: bool, show_label: bool, dashed: bool = False,
                 on_edited: Callable[[int, Box], None] | None = None) -> None:
        super().__init__(QRectF(QPointF(box.x1, box.y1), QPointF(box.x2, box.y2)))
        self.index, self.label, self.color, self.bounds = index, label, QColor(color), bounds
        self.editable = editable
        self._on_edited = on_edited
        self._scale = 1.0
        self.chip_shift = QPointF(0, 0)  # screen pixels off its own place, so it doesn't cover another chip
        self._drag: tuple[str, QPointF, QRectF] | None = None
        pen = QPen(self.color, width)
        pen.setCosmetic(True)  # width in screen pixels, whatever the zoom
        if dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        fill = QColor(self.color)
        fill.setAlpha(0 if dashed else 28)
        self.setBrush(QBrush(fill))
        name = display_name(label) or "no type yet"
        self.chip = LabelChip(f"{index + 1}  {name}" if editable else name, self.color, self)
        self.chip.setVisible(show_label)
        self._place_chip()
        if editable:
            self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
            self.setAcceptHoverEvents(True)
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(2 if editable else 1)

    def box(self) -> Box:
        """The box as drawn now, in image pixels."""
        r = self.rect().normalized()
        return Box(r.left(), r.top(), r.right(), r.bottom())

    def set_view_scale(self, scale: float) -> None:
        """The view's zoom (screen pixels per image pixel): handles keep their size on screen."""
        self.prepareGeometryChange()
        self._scale = max(scale, 1e-6)
        self._place_chip()

    def chip_place(self) -> QRectF:
        """Where the chip goes, in screen pixels at the view's scale (before any `chip_shift`): above the box's
        top-left corner, kept inside the image: below the top edge when the box touches it, left of the right edge
        when the chip would run past it."""
        r = self.rect().normalized()
        chip = self.chip.boundingRect()
        w, h = chip.width() / self._scale, chip.height() / self._scale  # the chip keeps its size on screen
        x = min(r.left(), max(self.bounds.left(), self.bounds.right() - w))
        y = r.top() if r.top() - h >= self.bounds.top() else min(r.top() + h, self.bounds.bottom())
        s = self._scale
        return QRectF(x * s, (y - h) * s, chip.width(), chip.height())

    def _place_chip(self) -> None:
        place = self.chip_place()
        s = self._scale
        self.chip.setPos(QPointF((place.left() + self.chip_shift.x()) / s, (place.bottom() + self.chip_shift.y()) / s))

    def boundingRect(self) -> QRectF:
        m = HANDLE_PX / self._scale
        return self.rect().normalized().adjusted(-m, -m, m, m)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setPen(self.pen())
        painter.setBrush(self.brush())
        painter.drawRect(self.rect().normalized())
        if self.editable and self.isSelected():
            h = HANDLE_PX / self._scale
            painter.setBrush(QColor("white"))
            pen = QPen(self.color, 1.5)
            pen.setCosmetic(True)
            painter.setPen(pen)
            for c in self._corners().values():
                painter.drawRect(QRectF(c.x() - h / 2, c.y() - h / 2, h, h))

    def _corners(self) -> dict[str, QPointF]:
        r = self.rect().normalized()
        return {"tl": r.topLeft(), "tr": r.topRight(), "bl": r.bottomLeft(), "br": r.bottomRight()}

    def corner_at(self, pos: QPointF) -> str | None:
        """Which corner handle (if any) is under `pos` (item coordinates)."""
        reach = HANDLE_PX / self._scale
        for name, c in self._corners().items():
            if abs(c.x() - pos.x()) <= reach and abs(c.y() - pos.y()) <= reach:
                return name
        return None

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        corner = self.corner_at(event.pos())
        shape = {"tl": Qt.CursorShape.SizeFDiagCursor, "br": Qt.CursorShape.SizeFDiagCursor,
                 "tr": Qt.CursorShape.SizeBDiagCursor, "bl": Qt.CursorShape.SizeBDiagCursor}
        self.setCursor(shape.get(corner or "", Qt.CursorShape.SizeAllCursor))
        super().hoverMoveEvent(event)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.editable:
            event.ignore()
            return
        self.scene().clearSelection()
        self.setSelected(True)
        self._drag = (self.corner_at(event.pos()) or "move", event.scenePos(), self.rect().normalized())
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is None:
            return
        mode, start, rect = self._drag
        delta = event.scenePos() - start
        if mode == "move":
            moved = rect.translated(delta)
            dx = max(self.bounds.left() - moved.left(), 0) + min(self.bounds.right() - moved.right(), 0)
            dy = max(self.bounds.top() - moved.top(), 0) + min(self.bounds.bottom() - moved.bottom(), 0)
            new = moved.translated(dx, dy)
        else:
            p = event.scenePos()
            p = QPointF(min(max(p.x(), self.bounds.left()), self.bounds.right()),
                        min(max(p.y(), self.bounds.top()), self.bounds.bottom()))
            fixed = {"tl": rect.bottomRight(), "tr": rect.bottomLeft(), "bl": rect.topRight(),
                     "br": rect.topLeft()}[mode]
            new = QRectF(fixed, p).normalized()
        self.prepareGeometryChange()
        self.setRect(new)
        self._place_chip()

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is None:
            return
        _, _, before = self._drag
        self._drag = None
        after = self.rect().normalized()
        if after != before and self._on_edited is not None:
            if after.width() < MIN_BOX_PX or after.height() < MIN_BOX_PX:
                self.setRect(before)  # collapsed to nothing: keep the old box
                self._place_chip()
                return
            self._on_edited(self.index, self.box())


CHIP_GAP = 3  # screen pixels between two chips


def separate_chips(items: Sequence[BoxItem]) -> None:
    """Shift the shown label chips of `items` so that none covers another (boxes that start close together):
    a chip moves right of the one in its way, or above it when there is no room on the right."""
    shown = [i for i in items if i.chip.isVisibleTo(i)]
    for item in items:
        item.chip_shift = QPointF(0, 0)
    placed: list[QRectF] = []
    for item in sorted(shown, key=lambda i: (i.chip_place().top(), i.chip_place().left())):
        base = item.chip_place()
        right_edge = item.bounds.right() * item._scale
        rect = QRectF(base)
        for _ in range(len(placed) + 1):
            hit = next((p for p in placed if p.adjusted(-CHIP_GAP, -CHIP_GAP, CHIP_GAP, CHIP_GAP).intersects(rect)),
                       None)
            if hit is None:
                break
            if hit.right() + CHIP_GAP + rect.width() <= right_edge:
                rect.moveLeft(hit.right() + CHIP_GAP)
            else:
                rect.moveLeft(base.left())
                rect.moveBottom(hit.top() - CHIP_GAP)
        placed.append(rect)
        item.chip_shift = rect.topLeft() - base.topLeft()
        item._place_chip()
