"""Re-inspecting reviewed images with the model in use (after Improve → Activate): which images are out, and,
once they are all back, how many of the new answers agree with the inspector's reviews."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from lriad_desktop.core.store.review import agreement
from lriad_desktop.ui.review.queue_model import QueueEntry


@dataclass(frozen=True)
class ReinspectionSummary:
    """How a re-inspection came out: images back, how many agree with their review, how many failed."""

    version: str
    flagged_only: bool
    back: int
    agree: int
    disagree: int
    failed: int

    def text(self) -> str:
        """'Re-inspected 4 flagged images with lriad-tiny-v1: 3 now agree with your review, 1 doesn't (✗ in the
        queue)'."""
        what = "flagged image" if self.flagged_only else "image"
        head = f"Re-inspected {self.back} {what}{'s' if self.back != 1 else ''} with {self.version}: "
        reviewed = self.agree + self.disagree
        if not self.flagged_only:
            head += f"of the {reviewed} you reviewed, " if reviewed else "none of them reviewed yet"
        bits = [f"{self.agree} now agree{'s' if self.agree == 1 else ''} with your review"] if reviewed else []
        if self.disagree:
            bits.append(f"{self.disagree} {'doesn' if self.disagree == 1 else 'don'}'t (✗ in the queue)")
        if self.failed:
            bits.append(f"{self.failed} failed")
        return head + ", ".join(bits)


class Reinspection(QObject):
    """Follows one re-inspection batch at a time; `finished` carries its summary."""

    finished = Signal(object)  # ReinspectionSummary

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: set[str] = set()
        self._version = ""
        self._flagged_only = False
        self._agree = self._disagree = self._failed = self._plain = 0

    @property
    def running(self) -> bool:
        return bool(self._waiting)

    def start(self, paths: list[str], version: str, flagged_only: bool) -> None:
        """A new batch (a batch still out is forgotten: its images count in the new one if asked again)."""
        self._waiting = set(paths)
        self._version, self._flagged_only = version, flagged_only
        self._agree = self._disagree = self._failed = self._plain = 0

    def back(self, entry: QueueEntry) -> None:
        """An image of the batch came back inspected."""
        if entry.path not in self._waiting:
            return
        self._waiting.discard(entry.path)
        if entry.review is not None and entry.finding is not None:
            if agreement(entry.review.review, entry.finding).agrees:
                self._agree += 1
            else:
                self._disagree += 1
        else:
            self._plain += 1
        self._maybe_done()

    def dropped(self, paths: list[str]) -> None:
        """Images of the batch that won't come back (cancelled, failed)."""
        for path in paths:
            if path in self._waiting:
                self._waiting.discard(path)
                self._failed += 1
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self._waiting:
            return
        back = self._agree + self._disagree + self._plain
        if back or self._failed:
            self.finished.emit(ReinspectionSummary(self._version, self._flagged_only, back, self._agree,
                                                   self._disagree, self._failed))
        self._agree = self._disagree = self._failed = self._plain = 0
