"""The image queue: one row per image with its finding, review and status; thumbnails made on demand."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QImage

from lriad_desktop.core.inspection.confidence import DEFAULT_THRESHOLD, doubt, needs_review
from lriad_desktop.core.anomaly_map.decision import decided
from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.store.review import ImageStatus, ReviewRecord, image_status, verdict_in_force
from lriad_desktop.ui.imaging import make_thumbnail
from lriad_desktop.ui.tasks import TaskRunner

THUMB_SIZE = 64


@dataclass
class QueueEntry:
    """One queued image as the UI holds it (mutable: it changes as the image is inspected and reviewed)."""

    path: str
    image_id: int | None = None
    model_finding: Finding | None = None  # what the model answered, its own verdict
    inspection_id: int | None = None
    review: ReviewRecord | None = None
    error: str = ""
    busy: bool = False  # waiting for or under inspection
    threshold: float = DEFAULT_THRESHOLD  # the object's threshold: it decides the verdict shown
    landed: bool = False  # landed in a watched folder and not looked at yet (the queue marks it "new")

    @property
    def finding(self) -> Finding | None:
        """The finding as the object's threshold decides it (what the queue shows and Accept records); on the demo
        model with an anomaly map, as the map decides it (`core.anomaly_map.decision`)."""
        return None if self.model_finding is None else decided(self.model_finding, self.threshold)

    @finding.setter
    def finding(self, value: Finding | None) -> None:
        self.model_finding = value

    @property
    def doubt(self) -> float | None:
        """How far the score is from the threshold (0: a coin toss); None without a score."""
        return doubt(self.finding, self.threshold)

    @property
    def needs_review(self) -> bool:
        """The score lies in the band around the threshold, and nobody has reviewed the image yet."""
        return self.review is None and needs_review(self.finding, self.threshold)

    @property
    def status(self) -> ImageStatus:
        return image_status(self.finding, self.review, self.error)

    @property
    def defective(self) -> bool:
        """The verdict in force is defective: the inspector's once reviewed, else the model's."""
        return not self.error and verdict_in_force(self.finding, self.review) is Verdict.ANOMALOUS

    @property
    def reinspected(self) -> bool:
        """Inspected again since it was reviewed (the review was made against an older inspection)."""
        r = self.review
        return r is not None and self.inspection_id is not None and r.review.inspection_id != self.inspection_id

    @property
    def name(self) -> str:
        return Path(self.path).name


class ThumbnailLoader(QObject):
    """Small previews made in the background, newest request first, kept in an LRU cache."""

    ready = Signal(str)

    def __init__(self, runner: TaskRunner, size: int = THUMB_SIZE, in_flight: int = 2, keep: int = 3000) -> None:
        super().__init__()
        self._runner, self._size, self._limit, self._keep = runner, size, in_flight, keep
        self._cache: OrderedDict[str, QImage | None] = OrderedDict()
        self._wanted: OrderedDict[str, None] = OrderedDict()
        self._running = 0

    def get(self, path: str) -> QImage | None:
        """The thumbnail if made (a null QImage when the file can't be read); else None and it is requested."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path] or QImage()
        self._wanted[path] = None
        self._wanted.move_to_end(path)
        self._pump()
        return None

    def _pump(self) -> None:
        while self._running < self._limit and self._wanted:
            path, _ = self._wanted.popitem(last=True)  # the most recently painted rows first
            self._running += 1
            self._runner.submit(lambda ctx, p=path: make_thumbnail(p, self._size),
                                lambda img, err, p=path: self._done(p, img, err), lane="io")

    def _done(self, path: str, image: QImage | None, error: BaseException | None) -> None:
        self._running -= 1
        self._cache[path] = image if error is None else None
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        self.ready.emit(path)
        self._pump()

    def forget(self, path: str) -> None:
        """Drop a cached thumbnail (the file changed)."""
        self._cache.pop(path, None)


def least_certain_first(entry: QueueEntry) -> tuple[bool, float]:
    """The "review by doubt" order: the score nearest its threshold first; images without a score last."""
    d = entry.doubt
    return (d is None, 0.0 if d is None else d)


class QueueModel(QAbstractListModel):
    """Rows of `QueueEntry`; keeps counts per status for the status bar."""

    EntryRole = Qt.ItemDataRole.UserRole + 1
    StatusRole = Qt.ItemDataRole.UserRole + 2
    countsChanged = Signal()

    def __init__(self, thumbnails: ThumbnailLoader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._entries: list[QueueEntry] = []
        self._rows: dict[str, int] = {}
        self._added: dict[str, int] = {}  # path → the order it was queued in
        self._counts: Counter[ImageStatus] = Counter()
        self._defective = 0
        self._unseen = 0  # landed in a watched folder, not looked at yet
        self.thumbnails = thumbnails
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)

    # --- Qt model ---------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.path}\n{entry.status.value}" + (f": {entry.error}" if entry.error else "")
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(entry.path) if self.thumbnails is not None else None
        if role == self.EntryRole:
            return entry
        if role == self.StatusRole:
            return entry.status
        return None

    def _thumbnail_ready(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    # --- queue --------------------------------------------------------------------------
    def add_entries(self, entries: Iterable[QueueEntry]) -> list[int]:
        """Append entries whose path is not queued yet; returns their rows."""
        new = []
        for e in entries:
            if e.path not in self._rows:
                self._rows[e.path] = -1
                new.append(e)
        if not new:
            return []
        first = len(self._entries)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for i, e in enumerate(new):
            self._entries.append(e)
            self._rows[e.path] = first + i
            self._added[e.path] = len(self._added)
            self._counts[e.status] += 1
            self._defective += e.defective
            self._unseen += e.landed
        self.endInsertRows()
        self.countsChanged.emit()
        return list(range(first, first + len(new)))

    def clear(self) -> None:
        """Empty the queue (reviews stay in the store)."""
        self.beginResetModel()
        self._entries.clear()
        self._rows.clear()
        self._added.clear()
        self._counts.clear()
        self._defective = 0
        self._unseen = 0
        self.endResetModel()
        self.countsChanged.emit()

    def reorder(self, key: Callable[[QueueEntry], Any] | None = None) -> None:
        """Sort the rows by `key` (stable; None: the order the images were queued in). Views keep their
        current and selected images; row numbers change (listeners of `layoutChanged` re-read theirs)."""
        added = self._added
        order = sorted(self._entries, key=lambda e: (key(e), added[e.path]) if key else added[e.path])
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        paths = [self._entries[i.row()].path for i in old]
        self._entries = order
        self._rows = {e.path: row for row, e in enumerate(order)}
        self.changePersistentIndexList(old, [self.index(self._rows[p]) for p in paths])
        self.layoutChanged.emit()

    def entry(self, row: int) -> QueueEntry:
        """The entry at `row`."""
        return self._entries[row]

    def entries(self) -> list[QueueEntry]:
        """All entries, in queue order."""
        return list(self._entries)

    def row_of(self, path: str) -> int | None:
        """The row of an image path, or None."""
        row = self._rows.get(path)
        return row if row is not None and row >= 0 else None

    def update(self, row: int, **changes: Any) -> QueueEntry:
        """Change fields of one entry and tell the views (and the counts)."""
        entry = self._entries[row]
        before, was_defective, was_landed = entry.status, entry.defective, entry.landed
        for key, value in changes.items():
            setattr(entry, key, value)
        after = entry.status
        if after is not before:
            self._counts[before] -= 1
            self._counts[after] += 1
        self._defective += entry.defective - was_defective
        self._unseen += entry.landed - was_landed
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)
        if after is not before or entry.defective != was_defective or entry.landed != was_landed:
            self.countsChanged.emit()
        return entry

    def set_busy(self, rows: Iterable[int], busy: bool) -> None:
        """Mark many rows as waiting for inspection (or not) with one update of the views."""
        rows = list(rows)
        if not rows:
            return
        for row in rows:
            self._entries[row].busy = busy
        self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))

    def counts(self) -> Counter[ImageStatus]:
        """How many entries have each status."""
        return Counter({k: v for k, v in self._counts.items() if v})

    def defective_count(self) -> int:
        """How many entries stand as defective (the inspector's verdict once reviewed, else the model's)."""
        return self._defective

    def unseen_count(self) -> int:
        """How many entries landed in a watched folder and were not looked at yet."""
        return self._unseen

    def find(self, start: int, step: int, predicate: Callable[[QueueEntry], bool], wrap: bool = True) -> int | None:
        """The next row after `start` (in direction `step`) whose entry matches, or None."""
        n = len(self._entries)
        if n == 0:
            return None
        row = start
        for _ in range(n if wrap else max(0, (n - 1 - start) if step > 0 else start)):
            row += step
            if not wrap and not 0 <= row < n:
                return None
            row %= n
            if predicate(self._entries[row]):
                return row
        return None
