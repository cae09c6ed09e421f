"""The central image view: zoom (wheel, fit, 100 %), pan, the boxes over the image, drawing a new box.

Scene coordinates are original-image pixels. The zoom is kept when moving between images
(unless the view is in "fit" mode, which fits every image).
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsRectItem, QGraphicsScene, QGraphicsView, QWidget

from lriad_desktop.core.inspection.finding import Box, Defect, MapSummary
from lriad_desktop.ui.review.heatmap import MAP_BOX_COLOR, HeatmapItem, paint_legend
from lriad_desktop.ui.imaging import DisplayImage
from lriad_desktop.ui.review.overlay import MIN_BOX_PX, BoxItem, PyramidItem, separate_chips
from lriad_desktop.ui.theme import colour

MIN_SCALE, MAX_SCALE = 0.01, 40.0
WHEEL_STEP = 1.2


class ImageView(QGraphicsView):
    """Shows one image with its defect boxes; emits edits made with the mouse."""

    boxDrawn = Signal(object)  # Box, in image pixels
    boxEdited = Signal(int, object)  # defect index, Box
    selectionChanged = Signal(int)  # selected defect index, -1 for none
    drawModeChanged = Signal(bool)
    zoomChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageView")
        self.setScene(QGraphicsScene(self))
        self.setFrameShape(QFrame.Shape.NoFrame)
        # panning is by dragging; scroll bars would only frame the image with clutter
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.scene().selectionChanged.connect(self._selection_changed)
        self._image_item: PyramidItem | None = None
        self._boxes: list[BoxItem] = []
        self._ghosts: list[BoxItem] = []
        self._retired: list[BoxItem] = []
        self._fit = True
        self._draw_mode = False
        self._rubber: QGraphicsRectItem | None = None
        self._rubber_origin: QPointF | None = None
        self._pan_origin: QPointF | None = None
        self.placeholder = "Drop images or folders here\nCtrl+O open files · Ctrl+Shift+O open a folder"
        self.overlay_visible = True
        self.labels_visible = True
        self.line_width = 2.0
        self.box_color = QColor("#ff453a")
        self.flag_color = QColor("#0a84ff")
        self._last_overlay: tuple[tuple[Defect, ...], tuple[Defect, ...], bool] = ((), (), False)
        self.drop_hint = ""  # while files are dragged over the window: what dropping them does
        self.map_visible = False  # the anomaly map's heatmap, legend and boxes (M)
        self.map_opacity = 0.55
        self._map: MapSummary | None = None
        self._heat: HeatmapItem | None = None
        self._map_boxes: list[BoxItem] = []

    # --- image ------------------------------------------------------------------------
    @property
    def image(self) -> DisplayImage | None:
        return self._image_item.image if self._image_item is not None else None

    def image_rect(self) -> QRectF:
        """The image in scene coordinates (image pixels); empty when none."""
        return self._image_item.boundingRect() if self._image_item is not None else QRectF()

    def set_image(self, image: DisplayImage | None, placeholder: str | None = None) -> None:
        """Show another image, keeping the zoom and the relative position unless fitting."""
        centre = None
        old = self.image_rect()
        if not old.isEmpty():
            c = self.mapToScene(self.viewport().rect().center())
            centre = (c.x() / old.width(), c.y() / old.height())
        self.scene().clear()
        self._boxes, self._ghosts, self._rubber = [], [], None
        self._map, self._heat, self._map_boxes = None, None, []
        self._image_item = None
        if placeholder is not None:
            self.placeholder = placeholder
        if image is None:
            self.scene().setSceneRect(QRectF())
            self.viewport().update()
            return
        self._image_item = PyramidItem(image)
        self.scene().addItem(self._image_item)
        rect = self._image_item.boundingRect()
        margin = max(rect.width(), rect.height()) * 0.5
        self.scene().setSceneRect(rect.adjusted(-margin, -margin, margin, margin))
        if self._fit or centre is None:
            self.fit()
        else:
            self.centerOn(centre[0] * rect.width(), centre[1] * rect.height())

    # --- boxes ------------------------------------------------------------------------
    def set_defects(self, defects: Sequence[Defect], ghosts: Sequence[Defect] = (), flagged: bool = False) -> None:
        """Draw `defects` (editable; the flag colour when `flagged`) and `ghosts` (the model's, dashed)."""
        self._last_overlay = (tuple(defects), tuple(ghosts), flagged)
        keep = self.selected_index()
        # an edit arrives from inside a box's own mouse handler: keep the old items alive until the next redraw
        self._retired = self._boxes + self._ghosts
        for item in self._retired:
            self.scene().removeItem(item)
        self._boxes, self._ghosts = [], []
        if self._image_item is None:
            return
        bounds = self.image_rect()
        scale = self.scale_factor
        for i, d in enumerate(ghosts):
            if d.box is not None:
                item = BoxItem(i, d.box, d.label, self.box_color, max(1.0, self.line_width - 0.5), bounds,
                               editable=False, show_label=False, dashed=True)
                self._ghosts.append(item)
        for i, d in enumerate(defects):
            if d.box is not None:
                item = BoxItem(i, d.box, d.label, self.flag_color if flagged else self.box_color, self.line_width,
                               bounds, editable=True, show_label=self.labels_visible, on_edited=self.boxEdited.emit)
                self._boxes.append(item)
        for item in self._ghosts + self._boxes:
            item.set_view_scale(scale)
            item.setVisible(self.overlay_visible)
            self.scene().addItem(item)
        for item in self._boxes:
            item.setSelected(item.index == keep)
        self._separate_chips()

    def _separate_chips(self) -> None:
        separate_chips(self._boxes + self._ghosts + self._map_boxes)  # no label chip covers another

    def box_items(self) -> list[BoxItem]:
        """The editable box items (for tests and tools)."""
        return list(self._boxes)

    def selected_index(self) -> int:
        """The defect index of the selected box, or -1."""
        for item in self._boxes:
            if item.isSelected():
                return item.index
        return -1

    def select_defect(self, index: int) -> None:
        """Select the box of the defect at `index`."""
        for item in self._boxes:
            item.setSelected(item.index == index)

    def _selection_changed(self) -> None:
        try:
            self.selectionChanged.emit(self.selected_index())
        except RuntimeError:  # items already deleted while the scene clears
            pass

    def set_box_style(self, line_width: float, color: str, flag_color: str, show_labels: bool) -> None:
        """Line width (screen pixels), colours and label chips; redraws the boxes."""
        self.line_width, self.labels_visible = line_width, show_labels
        self.box_color, self.flag_color = QColor(color), QColor(flag_color)
        self.set_defects(*self._last_overlay)

    # --- the anomaly map ------------------------------------------------------------------
    def set_map(self, summary: MapSummary | None) -> None:
        """Draw this image's anomaly map (None: it has none): the heatmap, and its boxes dashed in their own
        colour, apart from the model's; shown while `map_visible`."""
        if summary == self._map and (summary is None or self._heat is not None or not summary.cells):
            return
        for item in ([self._heat] if self._heat is not None else []) + self._map_boxes:
            self.scene().removeItem(item)
        self._map, self._heat, self._map_boxes = summary, None, []
        if summary is not None and self._image_item is not None:
            bounds = self.image_rect()
            if summary.cells:
                self._heat = HeatmapItem(summary, bounds, self.map_opacity)
                self.scene().addItem(self._heat)
            for i, box in enumerate(summary.boxes):
                item = BoxItem(i, box, "anomaly map", QColor(MAP_BOX_COLOR), max(1.5, self.line_width), bounds,
                               editable=False, show_label=i == 0, dashed=True)
                item.set_view_scale(self.scale_factor)
                self._map_boxes.append(item)
                self.scene().addItem(item)
        self._separate_chips()
        self._show_map_items()

    @property
    def map_summary(self) -> MapSummary | None:
        return self._map

    def map_box_items(self) -> list[BoxItem]:
        """The map's own boxes (for tests)."""
        return list(self._map_boxes)

    def heatmap_item(self) -> HeatmapItem | None:
        return self._heat

    def set_map_visible(self, visible: bool) -> None:
        """Show or hide the anomaly map layer (M)."""
        self.map_visible = visible
        self._show_map_items()

    def set_map_opacity(self, opacity: float) -> None:
        self.map_opacity = opacity
        if self._heat is not None:
            self._heat.setOpacity(opacity)

    def _show_map_items(self) -> None:
        for item in ([self._heat] if self._heat is not None else []) + self._map_boxes:
            item.setVisible(self.map_visible)
        self.viewport().update()

    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide every box."""
        self.overlay_visible = visible
        for item in self._boxes + self._ghosts:
            item.setVisible(visible)

    def set_labels_visible(self, visible: bool) -> None:
        """Show or hide the label chips."""
        self.labels_visible = visible
        for item in self._boxes:
            item.chip.setVisible(visible)
        self._separate_chips()

    # --- zoom and pan -----------------------------------------------------------------
    @property
    def scale_factor(self) -> float:
        """Screen pixels per image pixel."""
        return self.transform().m11()

    @property
    def fitting(self) -> bool:
        return self._fit

    def fit(self) -> None:
        """Fit the whole image in the view (and keep fitting the next images)."""
        self._fit = True
        if self._image_item is not None:
            self.fitInView(self.image_rect().adjusted(-8, -8, 8, 8), Qt.AspectRatioMode.KeepAspectRatio)
        self._zoomed()

    def actual_size(self) -> None:
        """100 %: one image pixel per screen pixel."""
        self._set_scale(1.0)

    def zoom_by(self, factor: float) -> None:
        """Zoom by `factor` around the mouse."""
        self._set_scale(self.scale_factor * factor)

    def _set_scale(self, scale: float) -> None:
        self._fit = False
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        current = self.scale_factor or 1.0
        self.scale(scale / current, scale / current)
        self._zoomed()

    def _zoomed(self) -> None:
        for item in self._boxes + self._ghosts + self._map_boxes:
            item.set_view_scale(self.scale_factor)
        self._separate_chips()
        self.zoomChanged.emit(self.scale_factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(WHEEL_STEP ** steps)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    # --- drawing a box ----------------------------------------------------------------
    @property
    def draw_mode(self) -> bool:
        return self._draw_mode

    def set_draw_mode(self, on: bool) -> None:
        """In draw mode, one drag over the image draws a new box."""
        if on == self._draw_mode:
            return
        self._draw_mode = on
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor)
        self.drawModeChanged.emit(on)

    def _clamp(self, p: QPointF) -> QPointF:
        r = self.image_rect()
        return QPointF(min(max(p.x(), r.left()), r.right()), min(max(p.y(), r.top()), r.bottom()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_origin = event.position()
            event.accept()
            return
        if self._draw_mode and event.button() == Qt.MouseButton.LeftButton and self._image_item is not None:
            self._rubber_origin = self._clamp(self.mapToScene(event.position().toPoint()))
            pen = QPen(self.flag_color, self.line_width, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber = self.scene().addRect(QRectF(self._rubber_origin, self._rubber_origin), pen)
            self._rubber.setZValue(10)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_origin is not None:
            delta = event.position() - self._pan_origin
            self._pan_origin = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self._rubber is not None and self._rubber_origin is not None:
            p = self._clamp(self.mapToScene(event.position().toPoint()))
            self._rubber.setRect(QRectF(self._rubber_origin, p).normalized())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_origin is not None and event.button() == Qt.MouseButton.MiddleButton:
            self._pan_origin = None
            return
        if self._rubber is not None:
            p = self._clamp(self.mapToScene(event.position().toPoint()))
            rect = QRectF(self._rubber_origin, p).normalized()
            self.scene().removeItem(self._rubber)
            self._rubber, self._rubber_origin = None, None
            self.set_draw_mode(False)
            big_enough = min(rect.width(), rect.height()) * self.scale_factor >= 4
            if rect.width() >= MIN_BOX_PX and rect.height() >= MIN_BOX_PX and big_enough:
                self.boxDrawn.emit(Box(rect.left(), rect.top(), rect.right(), rect.bottom()))
            return
        super().mouseReleaseEvent(event)

    def set_drop_hint(self, text: str) -> None:
        """Highlight the view with `text` while something droppable is dragged over the window ('' ends it)."""
        if text != self.drop_hint:
            self.drop_hint = text
            self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.drop_hint:
            painter.save()
            painter.resetTransform()
            area = QRectF(self.viewport().rect()).adjusted(10, 10, -10, -10)
            fill = QColor(colour("accent"))
            fill.setAlpha(40)
            pen = QPen(colour("accent"), 3, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(fill)
            painter.drawRoundedRect(area, 12, 12)
            painter.setPen(colour("text"))
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.drop_hint)
            painter.restore()
            return
        if self._image_item is not None and self.map_visible and self._map is not None:
            painter.save()
            painter.resetTransform()
            paint_legend(painter, QRectF(self.viewport().rect()), self._map)
            painter.restore()
        if self._image_item is not None or not self.placeholder:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(colour("muted"))
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        painter.restore()
