"""The anomaly map in the main window: the heatmap layer over the image (M), its opacity from the settings,
and the bank's row beside the golden samples (size, age, *Rebuild* with progress)."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.review.image_view import ImageView
from lriad_desktop.ui.review.queue_model import QueueEntry


class BankRow(QWidget):
    """One line under the golden samples: the object's anomaly-map bank, a progress bar while it builds, and
    *Rebuild*."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 0)
        lay.setSpacing(3)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.text = QLabel()
        self.text.setObjectName("meta")
        self.text.setWordWrap(True)
        self.rebuild_button = QPushButton("Rebuild")
        self.rebuild_button.setToolTip("Build the anomaly map's bank again from this object's golden samples and "
                                       "images reviewed as normal")
        row.addWidget(self.text, 1)
        row.addWidget(self.rebuild_button)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setFormat("building the anomaly map: %v of %m good images")
        self.bar.setMaximumHeight(14)
        self.bar.hide()
        lay.addLayout(row)
        lay.addWidget(self.bar)


class MapLayer(QObject):
    """Keeps the view's map layer and the bank row in step with the current image and the settings."""

    def __init__(self, controller, view: ImageView, row: BankRow, action: QAction,
                 current: Callable[[], QueueEntry | None], parent: QObject | None = None) -> None:
        super().__init__(parent or view)
        self.controller, self.view, self.row, self.action = controller, view, row, action
        self._current = current
        maps = controller.maps
        action.toggled.connect(self._toggled)
        row.rebuild_button.clicked.connect(self.rebuild)
        maps.changed.connect(lambda _name: self.show_bank())
        maps.progress.connect(self._progress)
        maps.notice.connect(controller.notice)

    def apply_settings(self, settings: Settings) -> None:
        self.view.set_map_opacity(settings.map_opacity)
        self.view.set_map_visible(settings.show_map)
        self.action.blockSignals(True)
        self.action.setChecked(settings.show_map)
        self.action.blockSignals(False)

    def _toggled(self, on: bool) -> None:
        self.view.set_map_visible(on)
        entry = self._current()
        if on and entry is not None and entry.model_finding is not None and entry.model_finding.anomaly_map is None:
            self.controller.notice.emit(self._why_none(entry))
        c = self.controller
        if on != c.settings.show_map:
            c.update_settings(c.settings.with_changes(show_map=on))

    def _why_none(self, entry: QueueEntry) -> str:
        """Why an inspected image has no map, in one sentence."""
        c = self.controller
        if not c.settings.anomaly_map:
            return "No anomaly map for this image: it is off in the settings (Inspection → Anomaly map)"
        status = c.maps.status(c.object_name_for(entry.path))
        if status.note or status.images == 0:
            return status.text()
        return "No anomaly map for this image: it was inspected before its object had one; inspect it again (I)"

    def show(self, entry: QueueEntry | None) -> None:
        """The current image's map on the view (after the view shows that image)."""
        finding = entry.model_finding if entry is not None else None
        self.view.set_map(finding.anomaly_map if finding is not None else None)

    def show_bank(self, object_name: str | None = None) -> None:
        """The bank row for the current image's object."""
        entry = self._current()
        c = self.controller
        if object_name is None or object_name == "":
            object_name = c.object_name_for(entry.path) if entry is not None else None
        if object_name is None or not c.settings.anomaly_map:
            self.row.setVisible(False)
            return
        self.row.setVisible(True)
        status = c.maps.status(object_name)
        self.row.text.setText(status.text())
        building = c.maps.building is not None
        self.row.rebuild_button.setEnabled(not building and not status.note)
        self.row.rebuild_button.setText("Build" if status.images == 0 else "Rebuild")
        self.row.bar.setVisible(building)

    def rebuild(self) -> None:
        entry = self._current()
        if entry is None:
            self.controller.notice.emit("Open an image first: the anomaly map belongs to its object")
            return
        if self.controller.maps.rebuild(self.controller.object_name_for(entry.path)):
            self.show_bank()

    def _progress(self, _name: str, done: int, total: int) -> None:
        self.row.bar.setMaximum(max(1, total))
        self.row.bar.setValue(done)
        self.row.bar.setVisible(True)
        self.row.rebuild_button.setEnabled(False)
