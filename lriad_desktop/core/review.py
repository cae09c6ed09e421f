"""The inspector's review loop without Qt: reviews, image status, review edits, and undo/redo.

Every edit is a pure function from the current review (or the model's finding) to a new
`Review`; `ReviewHistory` writes each one to the store at once and can undo it by deleting
the row it wrote (so an undone flag never reaches training data) and redo it by writing it
again.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable, Iterable, Protocol

from lriad_desktop.core.finding import Box, Defect, Finding, Verdict

DEFAULT_DEFECT_LABEL = "defect"


def current_reviewer() -> str:
    """The login name of the person at the keyboard ("unknown" when the OS can't say)."""
    try:
        return getpass.getuser()
    except Exception:  # getuser raises various errors without a login name
        return "unknown"


def defects_to_json(defects: Iterable[Defect]) -> str:
    """`[{label, box: [x1, y1, x2, y2] | null}]` in original pixels."""
    return json.dumps([{"label": d.label, "box": d.box.as_list(ndigits=2) if d.box else None} for d in defects])


def defects_from_json(text: str) -> tuple[Defect, ...]:
    """The inverse of `defects_to_json`."""
    return tuple(Defect(d["label"], Box(*d["box"]) if d.get("box") else None) for d in json.loads(text or "[]"))


class ReviewKind(str, Enum):
    """What the inspector did: agreed with the model, or flagged a disagreement."""

    ACCEPT = "accept"
    FLAG = "flag"


@dataclass(frozen=True)
class Review:
    """The inspector's judgement of one image: boxes in original-image pixels."""

    kind: ReviewKind
    verdict: Verdict
    defects: tuple[Defect, ...] = ()
    note: str = ""
    inspection_id: int | None = None

    def __post_init__(self) -> None:
        if self.verdict not in (Verdict.ANOMALOUS, Verdict.NORMAL):
            raise ValueError(f"a review's verdict is anomalous or normal, not {self.verdict.value}")
        if self.verdict is Verdict.NORMAL and self.defects:
            raise ValueError("a normal verdict has no defects")

    @property
    def is_flag(self) -> bool:
        return self.kind is ReviewKind.FLAG


@dataclass(frozen=True)
class ReviewRecord:
    """A review as stored: who made it and when."""

    id: int
    image_id: int
    review: Review
    reviewer: str
    created_at: str


class ImageStatus(str, Enum):
    """Where one image of the queue stands."""

    NOT_INSPECTED = "not inspected"
    NORMAL = "normal"
    DEFECT = "defect"
    UNPARSED = "unparsed"
    ERROR = "error"
    FLAGGED = "flagged"
    REVIEWED = "reviewed"


def image_status(finding: Finding | None, review: ReviewRecord | Review | None, error: str = "") -> ImageStatus:
    """The queue status: a load error first, then the inspector's review, then the model's verdict."""
    if error:
        return ImageStatus.ERROR
    r = review.review if isinstance(review, ReviewRecord) else review
    if r is not None:
        return ImageStatus.FLAGGED if r.is_flag else ImageStatus.REVIEWED
    if finding is None:
        return ImageStatus.NOT_INSPECTED
    return {Verdict.NORMAL: ImageStatus.NORMAL, Verdict.ANOMALOUS: ImageStatus.DEFECT}.get(
        finding.verdict, ImageStatus.UNPARSED)


def acceptance(finding: Finding | None, inspection_id: int | None = None) -> Review | None:
    """The review that agrees with the model's finding; None when there is no verdict to agree with."""
    if finding is None or finding.verdict is Verdict.UNPARSED:
        return None
    defects = finding.defects if finding.verdict is Verdict.ANOMALOUS else ()
    return Review(ReviewKind.ACCEPT, finding.verdict, tuple(defects), "", inspection_id)


def starting_point(finding: Finding | None, review: Review | None, inspection_id: int | None = None) -> Review:
    """What an edit starts from: the current review, else the model's finding, else "normal"."""
    if review is not None:
        return review
    accepted = acceptance(finding, inspection_id)
    if accepted is not None:
        return accepted
    return Review(ReviewKind.FLAG, Verdict.NORMAL, (), "", inspection_id)


def effective_defects(finding: Finding | None, review: Review | None) -> tuple[Defect, ...]:
    """The defects to draw and edit: the review's when there is one, else the model's."""
    if review is not None:
        return review.defects
    return finding.defects if finding is not None and finding.verdict is Verdict.ANOMALOUS else ()


def _flag(base: Review, **changes: object) -> Review:
    return replace(base, kind=ReviewKind.FLAG, **changes)


def with_verdict(base: Review, verdict: Verdict) -> Review:
    """Flag: the verdict is `verdict` (a normal verdict drops the defects)."""
    return _flag(base, verdict=verdict, defects=() if verdict is Verdict.NORMAL else base.defects)


def with_verdict_toggled(base: Review) -> Review:
    """Flag: normal ↔ defective."""
    return with_verdict(base, Verdict.NORMAL if base.verdict is Verdict.ANOMALOUS else Verdict.ANOMALOUS)


def with_defect_added(base: Review, defect: Defect) -> Review:
    """Flag: one more defect (the verdict becomes anomalous)."""
    return _flag(base, verdict=Verdict.ANOMALOUS, defects=base.defects + (defect,))


def with_defect_removed(base: Review, index: int) -> Review:
    """Flag: the defect at `index` removed (the verdict stays; set it to normal separately)."""
    defects = base.defects[:index] + base.defects[index + 1:]
    return _flag(base, defects=defects)


def with_defect_label(base: Review, index: int, label: str) -> Review:
    """Flag: the defect at `index` has type `label` (a label-only defect is added when there is none)."""
    label = label.strip() or DEFAULT_DEFECT_LABEL
    if not base.defects:
        return with_defect_added(base, Defect(label, None))
    d = base.defects[index]
    return _flag(base, defects=base.defects[:index] + (Defect(label, d.box),) + base.defects[index + 1:])


def with_defect_box(base: Review, index: int, box: Box | None) -> Review:
    """Flag: the defect at `index` is at `box` (moved, resized or cleared)."""
    d = base.defects[index]
    return _flag(base, defects=base.defects[:index] + (Defect(d.label, box),) + base.defects[index + 1:])


def with_note(base: Review, note: str) -> Review:
    """The same judgement with a note (a note alone doesn't turn an acceptance into a flag)."""
    return replace(base, note=note.strip())


@dataclass(frozen=True)
class ReviewEdit:
    """One undoable edit: the review written for an image and the row that holds it."""

    image_id: int
    text: str
    review: Review
    row_id: int


class ReviewWriter(Protocol):
    """Where review rows are written (the review store)."""

    def save_review(self, image_id: int, review: Review, reviewer: str | None = None) -> ReviewRecord: ...
    def delete_review(self, review_id: int) -> None: ...


class ReviewHistory:
    """Undo/redo for review edits, each written to the store at once.

    `on_change` listeners are called after every apply, undo and redo with the image id.
    """

    def __init__(self, store: ReviewWriter, limit: int = 500) -> None:
        self.store = store
        self.limit = limit
        self._undo: list[ReviewEdit] = []
        self._redo: list[ReviewEdit] = []
        self.on_change: list[Callable[[int], None]] = []

    def apply(self, image_id: int, review: Review, text: str) -> ReviewRecord:
        """Write `review` as the image's current review; it can be undone."""
        return self.record(image_id, review, text, self.store.save_review(image_id, review))

    def record(self, image_id: int, review: Review, text: str, written: ReviewRecord) -> ReviewRecord:
        """Make a review already written (by a writer that waited for the store) the edit to undo next."""
        self._undo.append(ReviewEdit(image_id, text, review, written.id))
        del self._undo[:-self.limit]
        self._redo.clear()
        self._changed(image_id)
        return written

    def undo(self) -> ReviewEdit | None:
        """Undo the last edit (its row is deleted); None when there is nothing to undo. A failed delete
        raises and leaves the edit to undo."""
        if not self._undo:
            return None
        self.store.delete_review(self._undo[-1].row_id)
        edit = self._undo.pop()
        self._redo.append(edit)
        self._changed(edit.image_id)
        return edit

    def redo(self) -> ReviewEdit | None:
        """Write the last undone edit again; None when there is nothing to redo. A failed write raises and
        leaves the edit to redo."""
        if not self._redo:
            return None
        record = self.store.save_review(self._redo[-1].image_id, self._redo[-1].review)
        edit = replace(self._redo.pop(), row_id=record.id)
        self._undo.append(edit)
        self._changed(edit.image_id)
        return edit

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        return self._undo[-1].text if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1].text if self._redo else ""

    def _changed(self, image_id: int) -> None:
        for listener in list(self.on_change):
            listener(image_id)
