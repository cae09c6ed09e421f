"""The golden samples the UI knows: each object's good references, read from the store once and kept in step
with every change the inspector makes (the strip listens to `changed`)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from lriad_desktop.core.inspection.prompting import object_key
from lriad_desktop.core.store.review_store import GoldenSample, ReviewStore


class GoldenSamples(QObject):
    """Golden samples per object, written to the store at once. Store errors are raised (`StoreError`) for the
    caller to show."""

    changed = Signal(str)  # the object key whose samples changed

    def __init__(self, store: ReviewStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._by_object: dict[str, list[GoldenSample]] = {}

    def of(self, object_name: str) -> list[GoldenSample]:
        """The object's golden samples, oldest first (the first K are the references)."""
        key = object_key(object_name)
        if key not in self._by_object:
            self._by_object[key] = self._store.golden_samples(object_name)
        return list(self._by_object[key])

    def sample_of(self, image_id: int, object_name: str) -> GoldenSample | None:
        """The golden sample this image is for the object, or None."""
        return next((g for g in self.of(object_name) if g.image_id == image_id), None)

    def add(self, image_id: int, object_name: str) -> GoldenSample:
        """File an image as a golden sample of the object."""
        sample = self._store.add_golden_sample(image_id, object_name)
        self._reload(object_name)
        return sample

    def remove(self, sample: GoldenSample) -> None:
        """Stop using a golden sample."""
        self._store.remove_golden_sample(sample.id)
        self._reload(sample.object_name)

    def references_for(self, path: str, object_name: str, count: int) -> tuple[str, ...]:
        """The first `count` golden samples of the object, other than the image itself, as paths."""
        if count <= 0:
            return ()
        return tuple(g.path for g in self.of(object_name) if g.path != path)[:count]

    def reload(self, object_name: str) -> None:
        """Read the object's golden samples again (after another connection added some) and say so."""
        self._reload(object_name)

    def _reload(self, object_name: str) -> None:
        key = object_key(object_name)
        self._by_object[key] = self._store.golden_samples(object_name)
        self.changed.emit(key)
