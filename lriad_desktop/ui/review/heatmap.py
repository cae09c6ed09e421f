"""The anomaly map over the image: a heatmap of how unlike the object's good images each part is, its colour
scale (a legend in the view's corner), and the map's own boxes.

The map's cells are in the object's normalised units (`core.anomaly_map.patch_map`: about 0 on good images; at
`MAP_MIDPOINT` good-image spreads the map alone reads as P = 0.5). The colour runs from 0 to `SCALE_MAX`;
the cell grid is drawn scaled to the image with smooth filtering (bilinear), so it reads as a heatmap.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from lriad_desktop.core.anomaly_map.patch_map import MAP_MIDPOINT
from lriad_desktop.core.inspection.finding import MapSummary

SCALE_MAX = 2 * MAP_MIDPOINT  # the top of the colour scale, in good-image spreads
MAP_BOX_COLOR = "#ffd60a"  # the map's boxes: dashed, in a colour no model or flag box has
# (position 0-1, colour): dark blue (like the good images) through cyan, green and yellow to red (unlike them)
STOPS = ((0.0, "#1b1f6e"), (0.25, "#1f7fd1"), (0.45, "#22c4a8"), (0.6, "#9bd93c"), (0.78, "#ffd23f"),
         (1.0, "#e8262b"))


def colour_at(t: float) -> QColor:
    """The colour map at `t` in [0, 1] (linear between the stops)."""
    t = min(1.0, max(0.0, t))
    for (a, ca), (b, cb) in zip(STOPS, STOPS[1:]):
        if t <= b:
            f = (t - a) / (b - a) if b > a else 0.0
            c1, c2 = QColor(ca), QColor(cb)
            return QColor.fromRgbF(c1.redF() + f * (c2.redF() - c1.redF()), c1.greenF() + f * (c2.greenF() - c1.greenF()),
                                   c1.blueF() + f * (c2.blueF() - c1.blueF()))
    return QColor(STOPS[-1][1])


def heat_image(cells: tuple[tuple[float, ...], ...]) -> QImage:
    """The cell grid as a small RGBA image: colour by value, more opaque where the cell is less like the good
    images (the part stays visible where the map sees nothing)."""
    rows, cols = len(cells), len(cells[0]) if cells else 0
    image = QImage(max(1, cols), max(1, rows), QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            t = min(1.0, max(0.0, value / SCALE_MAX))
            colour = colour_at(t)
            colour.setAlpha(int(110 + 145 * t))
            image.setPixelColor(c, r, colour)
    return image


class HeatmapItem(QGraphicsItem):
    """The map's heatmap over the whole image (scene coordinates are image pixels)."""

    def __init__(self, summary: MapSummary, rect: QRectF, opacity: float) -> None:
        super().__init__()
        self.summary = summary
        self._rect = QRectF(rect)
        self._image = heat_image(summary.cells)
        self.setOpacity(opacity)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(0)  # above the image, below every box

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(self._rect, self._image)


def paint_legend(painter: QPainter, viewport: QRectF, summary: MapSummary) -> QRectF:
    """The colour scale in the view's lower left corner (no score: the side panel has the one number); returns
    where it was drawn."""
    font = QFont()
    font.setPointSizeF(9.0)
    painter.setFont(font)
    fm = painter.fontMetrics()
    line = fm.height()
    width = max(230.0, fm.horizontalAdvance("like the good images") * 2.0 + 24)
    box = QRectF(viewport.left() + 12, viewport.bottom() - 12 - (line * 3 + 30), width, line * 3 + 30)
    path = QPainterPath()
    path.addRoundedRect(box, 6, 6)
    painter.fillPath(path, QColor(20, 22, 28, 215))
    painter.setPen(QColor("white"))
    inner = box.adjusted(10, 6, -10, -6)
    title = "Anomaly map · M hides it"  # its score is the side panel's one number, not a second one here
    painter.drawText(QRectF(inner.left(), inner.top(), inner.width(), line), Qt.AlignmentFlag.AlignLeft, title)
    bar = QRectF(inner.left(), inner.top() + line + 6, inner.width(), 12)
    gradient = QLinearGradient(QPointF(bar.left(), 0), QPointF(bar.right(), 0))
    for t, c in STOPS:
        gradient.setColorAt(t, QColor(c))
    painter.fillRect(bar, gradient)
    mid = bar.left() + bar.width() * MAP_MIDPOINT / SCALE_MAX
    painter.drawLine(QPointF(mid, bar.top() - 2), QPointF(mid, bar.bottom() + 2))
    ticks = QRectF(inner.left(), bar.bottom() + 4, inner.width(), line)
    painter.setPen(QColor(225, 228, 235))
    painter.drawText(ticks, Qt.AlignmentFlag.AlignLeft, "like the good images")
    painter.drawText(ticks, Qt.AlignmentFlag.AlignRight, "unlike them")
    painter.drawText(QRectF(inner.left(), ticks.bottom(), inner.width(), line), Qt.AlignmentFlag.AlignLeft,
                     "dashed yellow: the map's regions")
    return box
