"""A ROC or precision–recall curve on the unit square, with a dot where the chosen threshold falls
(drawn with QPainter, like `ui.improve.charts`; no chart library)."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from lriad_desktop.ui.theme import colour, paint_card


class CurveChart(QWidget):
    """One curve (x, y in [0, 1]) with axis names, a figure in the corner ("AUROC 0.93") and a marker."""

    def __init__(self, title: str, x_name: str, y_name: str, diagonal: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.x_name, self.y_name, self.diagonal = title, x_name, y_name, diagonal
        self.points: list[tuple[float, float]] = []
        self.marker: tuple[float, float] | None = None
        self.figure = ""
        self.empty_text = "no reviewed images with a score"
        self.setMinimumSize(260, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(title)

    def sizeHint(self) -> QSize:
        return QSize(320, 300)

    def set_curve(self, points: Sequence[tuple[float, float]], figure: str, empty_text: str = "") -> None:
        """Show this curve (an empty one shows `empty_text`) and its figure."""
        self.points = [(float(x), float(y)) for x, y in points]
        self.figure = figure
        self.empty_text = empty_text or self.empty_text
        self.update()

    def set_marker(self, point: tuple[float, float] | None) -> None:
        """Where the chosen threshold lies on the curve (None: nowhere to show)."""
        self.marker = point
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        header = paint_card(p, QRectF(self.rect()), self.font(), self.title)
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(colour("accent"))
        p.drawText(header, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, self.figure)
        p.setFont(self.font())
        fm = p.fontMetrics()
        plot = frame.adjusted(12 + fm.horizontalAdvance("0.0") + 6, 12 + fm.height() + 4, -14,
                              -(10 + 2 * fm.height()))
        if plot.width() < 40 or plot.height() < 40:
            p.end()
            return

        def at(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + x * plot.width(), plot.bottom() - y * plot.height())

        grid = QPen(colour("border"), 1, Qt.PenStyle.DotLine)
        for k in range(5):
            v = k / 4
            p.setPen(grid)
            p.drawLine(at(v, 0), at(v, 1))
            p.drawLine(at(0, v), at(1, v))
            p.setPen(colour("muted"))
            p.drawText(QRectF(at(v, 0).x() - 20, plot.bottom() + 2, 40, fm.height()), Qt.AlignmentFlag.AlignCenter,
                       f"{v:.1f}" if k % 2 == 0 else "")
            p.drawText(QRectF(frame.left() + 4, at(0, v).y() - fm.height() / 2, plot.left() - frame.left() - 8,
                              fm.height()), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{v:.1f}" if k % 2 == 0 else "")
        p.drawText(QRectF(plot.left(), plot.bottom() + 2 + fm.height(), plot.width(), fm.height()),
                   Qt.AlignmentFlag.AlignCenter, self.x_name)
        p.drawText(QRectF(plot.left() + 6, plot.top() + 4, plot.width(), fm.height()), Qt.AlignmentFlag.AlignLeft,
                   "↑ " + self.y_name)
        p.setPen(QPen(colour("border"), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(plot)
        if self.diagonal:
            p.setPen(QPen(colour("muted"), 1, Qt.PenStyle.DashLine))
            p.drawLine(at(0, 0), at(1, 1))
        if not self.points:
            p.setPen(colour("muted"))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            p.end()
            return
        path = QPainterPath(at(*self.points[0]))
        for x, y in self.points[1:]:
            path.lineTo(at(x, y))
        p.setPen(QPen(colour("accent"), 2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        p.drawPath(path)
        if self.marker is not None:
            p.setPen(QPen(colour("base"), 2))
            p.setBrush(colour("danger"))
            p.drawEllipse(at(*self.marker), 6, 6)
        p.end()
