"""A small line chart drawn with QPainter (reward and KL curves while a model trains; no chart library)."""

from __future__ import annotations

import math
from typing import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from lriad_desktop.ui.theme import colour, paint_card


def nice_range(values: Sequence[float], floor: float | None = None) -> tuple[float, float]:
    """A y range that holds `values` with a little room (a flat series still gets some height), never below
    `floor` when the values aren't (a KL divergence is never negative: its axis shouldn't say -0.0036)."""
    lo, hi = min(values), max(values)
    if math.isclose(lo, hi, abs_tol=1e-12):
        pad = abs(lo) * 0.1 or 1.0
    else:
        pad = (hi - lo) * 0.08
    low = lo - pad if floor is None or lo < floor else max(lo - pad, floor)
    return low, hi + pad


def _label(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


class LineChart(QWidget):
    """One series against the training step: title and latest value on top, the curve below."""

    def __init__(self, title: str, colour_token: str = "accent", parent: QWidget | None = None,
                 floor: float | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.floor = floor
        self.colour_token = colour_token
        self.values: list[float] = []
        self.max_steps = 0
        self.setMinimumSize(220, 130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(title)

    def sizeHint(self) -> QSize:
        return QSize(360, 170)

    def set_values(self, values: Sequence[float], max_steps: int = 0) -> None:
        """Show these values (one per step) on an x axis of `max_steps` steps (0: as many as values)."""
        self.values = [float(v) for v in values if math.isfinite(v)]
        self.max_steps = max_steps
        self.setToolTip(f"{self.title}: {_label(self.values[-1])} at step {len(self.values)}" if self.values else "")
        self.update()

    def y_range(self) -> tuple[float, float]:
        return nice_range(self.values, self.floor)

    def axis_labels(self) -> list[str]:
        """The three y-axis labels, bottom to top ([] before the first value)."""
        if not self.values:
            return []
        lo, hi = self.y_range()
        return [_label(lo + (hi - lo) * k / 2) for k in range(3)]

    def plot_rect(self, metrics: QFontMetrics) -> QRectF:
        """Where the curve goes: left of it, room for the widest y label (never clipped at the card's edge)."""
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        widest = max((metrics.horizontalAdvance(t) for t in self.axis_labels()),
                     default=metrics.horizontalAdvance("-0.000"))
        return frame.adjusted(10 + widest + 6, 8 + metrics.height() + 6, -12, -(8 + metrics.height()))

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        header = paint_card(p, QRectF(self.rect()), self.font(), self.title)
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        line = QColor(colour(self.colour_token))
        if self.values:
            p.setPen(line)
            p.drawText(header, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, _label(self.values[-1]))
        p.setFont(self.font())
        metrics = p.fontMetrics()
        plot = self.plot_rect(metrics)
        if plot.width() < 20 or plot.height() < 20:
            p.end()
            return
        if not self.values:
            p.setPen(colour("muted"))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "waiting for the first step")
            p.end()
            return
        lo, hi = self.y_range()
        steps = max(self.max_steps, len(self.values), 2)

        def point(i: int, v: float) -> QPointF:
            x = plot.left() + plot.width() * (i / (steps - 1))
            y = plot.bottom() - plot.height() * ((v - lo) / (hi - lo))
            return QPointF(x, y)

        grid = QPen(colour("border"), 1, Qt.PenStyle.DotLine)
        for k in range(3):  # three horizontal grid lines with their values
            v = lo + (hi - lo) * k / 2
            y = point(0, v).y()
            p.setPen(grid)
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(colour("muted"))
            p.drawText(QRectF(frame.left() + 4, y - metrics.height() / 2, plot.left() - frame.left() - 10,
                              metrics.height()), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _label(v))
        p.drawText(QRectF(plot.left(), plot.bottom() + 3, plot.width(), metrics.height()),
                   Qt.AlignmentFlag.AlignLeft, "step 1")
        p.drawText(QRectF(plot.left(), plot.bottom() + 3, plot.width(), metrics.height()),
                   Qt.AlignmentFlag.AlignRight, f"{steps}")
        path = QPainterPath(point(0, self.values[0]))
        for i, v in enumerate(self.values[1:], start=1):
            path.lineTo(point(i, v))
        p.setPen(QPen(line, 2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        p.setBrush(line)
        p.drawEllipse(point(len(self.values) - 1, self.values[-1]), 3.5, 3.5)
        p.end()
