"""The golden samples of the current image's object as a strip of thumbnails, each with a remove button.

The first K (the setting) are the references the model sees beside the image; any further ones are
kept but dimmed. Thumbnails come from the queue's background thumbnail loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from lriad_desktop.core.inspection.prompting import object_phrase
from lriad_desktop.core.store.review_store import GoldenSample
from lriad_desktop.ui.narrow_panel import ElidedLabel
from lriad_desktop.ui.review.queue_model import THUMB_SIZE, ThumbnailLoader
from lriad_desktop.ui.review.finding_panel import section_title

TILE = THUMB_SIZE + 36


class _Tile(QFrame):
    """One golden sample: its thumbnail, its file name and a remove button."""

    def __init__(self, sample: GoldenSample, used: bool, on_remove, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample = sample
        self.setObjectName("goldenTile")
        self.setProperty("used", used)
        self.setFixedWidth(TILE)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 2)
        lay.setSpacing(2)
        self.picture = QLabel()
        self.picture.setFixedSize(TILE - 10, THUMB_SIZE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel()
        self.caption.setObjectName("meta")
        name = Path(sample.path).name
        self.caption.setText(self.caption.fontMetrics().elidedText(Path(name).stem, Qt.TextElideMode.ElideMiddle,
                                                                   TILE - 30))
        self.remove_button = QToolButton()
        self.remove_button.setText("×")
        self.remove_button.setObjectName("goldenRemove")
        self.remove_button.setToolTip(f"Stop using {name} as a golden sample (the image and its review stay)")
        self.remove_button.clicked.connect(lambda: on_remove(sample))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.caption, 1)
        row.addWidget(self.remove_button)
        lay.addWidget(self.picture)
        lay.addLayout(row)
        note = ("\nshown to the model beside each image of the object" if used else
                "\nkept, not shown to the model (more than the setting's number of golden samples)")
        self.setToolTip(f"{sample.path}\nadded by {sample.added_by}{note}")

    def show_thumbnail(self, thumbnails: ThumbnailLoader) -> None:
        image = thumbnails.get(self.sample.path)
        if image is None:
            self.picture.setText("…")
        elif image.isNull():
            self.picture.setText("missing")
            self.picture.setToolTip(f"{self.sample.path} can't be read: images are inspected without it")
        else:
            self.picture.setPixmap(QPixmap.fromImage(image))


class ReferenceStrip(QWidget):
    """The object's golden samples; emits `removeRequested(sample)` when a remove button is pressed."""

    removeRequested = Signal(object)  # GoldenSample

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._tiles: list[_Tile] = []
        thumbnails.ready.connect(self._thumbnail_ready)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.title = ElidedLabel("GOLDEN SAMPLES")  # a long object name can't widen the side panel
        self.title.setObjectName("sectionTitle")
        self.hint = QLabel()
        self.hint.setObjectName("meta")
        self.hint.setWordWrap(True)
        self._row = QWidget()
        self._row_layout = QHBoxLayout(self._row)
        self._row_layout.setContentsMargins(0, 0, 0, 0)
        self._row_layout.setSpacing(6)
        self._row_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("goldenStrip")
        self.scroll.setWidget(self._row)
        self.scroll.setWidgetResizable(True)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFixedHeight(THUMB_SIZE + 44)
        layout.addWidget(self.title)
        layout.addWidget(self.scroll)
        layout.addWidget(self.hint)

    @property
    def tiles(self) -> list[_Tile]:
        return list(self._tiles)

    def show_samples(self, object_name: str | None, samples: Sequence[GoldenSample], count: int,
                     current_is_golden: bool = False, by_the_model: bool = False) -> None:
        """Show an object's golden samples; the first `count` are the ones the model is shown (`by_the_model`:
        the count is what the model folder says, the setting being "as the model says")."""
        for tile in self._tiles:
            tile.hide()
            self._row_layout.removeWidget(tile)
            tile.deleteLater()
        self._tiles = []
        if object_name is None:
            self.title.setText("GOLDEN SAMPLES")
            self.hint.setText("")
            self.scroll.hide()
            return
        obj = object_phrase(object_name)
        self.title.setText(f"GOLDEN SAMPLES · {obj.upper()} · {len(samples)}")
        for i, sample in enumerate(samples):
            tile = _Tile(sample, i < count, self.removeRequested.emit)
            self._row_layout.insertWidget(i, tile)
            tile.show_thumbnail(self._thumbnails)
            self._tiles.append(tile)
        self.scroll.setVisible(bool(samples))
        if not samples:
            self.hint.setText(f"No golden sample of the {obj} yet: accept a normal {obj}, then press G.")
        elif count <= 0 and by_the_model:
            self.hint.setText("Not shown to the model: it wasn't trained with golden samples beside the image "
                              "(Settings → Golden samples per image); they still build the anomaly map.")
        elif count <= 0:
            self.hint.setText("Not shown to the model: golden samples per image is 0 in the settings.")
        elif current_is_golden:
            self.hint.setText("This image is a golden sample (G: stop using it). Other images of the "
                              f"{obj} are inspected beside the first {min(count, len(samples))}.")
        else:
            used = min(count, len(samples))
            which = "the highlighted golden sample" if used == 1 else f"the {used} highlighted golden samples"
            self.hint.setText(f"The model compares this image with {which}" +
                              ("; the others are kept, not shown." if len(samples) > used else "."))

    def _thumbnail_ready(self, path: str) -> None:
        for tile in self._tiles:
            if tile.sample.path == path:
                tile.show_thumbnail(self._thumbnails)
