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
from typing import Callable, Iterable, Protocol, Sequence

from lriad_desktop.core.defect_kinds import canonical_label, display_name
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict, verdict_word


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
    """What the inspector did: agreed with the model, or which part of its answer they corrected.

    The kind is decided by comparing the review with the finding it was made against (`classified`),
    never by which key was pressed: a box moved and moved back is an acceptance again.
    """

    ACCEPT = "accept"  # the model is right
    FLAG = "flag"  # a verdict flag: normal <-> defective is wrong (or the model gave no readable verdict)
    LABEL = "label"  # a label correction: the part is defective as the model says, but a defect type is wrong
    BOX = "box"  # a box correction: verdict and types stand; a box is misplaced, missing or extra

    @property
    def words(self) -> str:
        """'accepted', 'verdict flagged', 'label corrected', 'box corrected'."""
        return REVIEW_KIND_WORDS[self]


REVIEW_KIND_WORDS: dict[ReviewKind, str] = {ReviewKind.ACCEPT: "accepted", ReviewKind.FLAG: "verdict flagged",
                                            ReviewKind.LABEL: "label corrected", ReviewKind.BOX: "box corrected"}


@dataclass(frozen=True)
class Review:
    """The inspector's judgement of one image: boxes in original-image pixels; labels as `canonical_label`
    spells them ("" for a box whose type is not chosen yet)."""

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
    def disagrees(self) -> bool:
        """A flag or a correction: the inspector changed something the model said (what training learns from)."""
        return self.kind is not ReviewKind.ACCEPT

    @property
    def unlabelled(self) -> int:
        """How many defects have no type yet."""
        return sum(1 for d in self.defects if not d.label.strip())


@dataclass(frozen=True)
class ReviewRecord:
    """A review as stored: who made it and when."""

    id: int
    image_id: int
    review: Review
    reviewer: str
    created_at: str


def _labels(defects: Iterable[Defect]) -> frozenset[str]:
    return frozenset(canonical_label(d.label) for d in defects if d.label.strip())


def same_box(a: Box | None, b: Box | None, tolerance: float = 0.5) -> bool:
    """Whether two boxes are the same within `tolerance` pixels (a stored box is rounded to 0.01 px)."""
    if a is None or b is None:
        return a is b
    return all(abs(x - y) <= tolerance for x, y in zip(a.as_list(None), b.as_list(None)))


def _same_defects(a: Sequence[Defect], b: Sequence[Defect]) -> bool:
    return len(a) == len(b) and all(canonical_label(x.label) == canonical_label(y.label) and same_box(x.box, y.box)
                                    for x, y in zip(a, b))


def review_kind(finding: Finding | None, verdict: Verdict, defects: Sequence[Defect]) -> ReviewKind:
    """The kind of a judgement against the model's finding: a different (or no readable) verdict is a flag;
    the same defective verdict with other defect types a label correction, with the same types but other
    boxes (moved, added, removed) a box correction; the model's own answer an acceptance."""
    if finding is None or finding.verdict is Verdict.UNPARSED or finding.verdict is not verdict:
        return ReviewKind.FLAG
    if verdict is Verdict.NORMAL or _same_defects(defects, finding.defects):
        return ReviewKind.ACCEPT
    if _labels(defects) - _labels(finding.defects) or (_labels(finding.defects) - _labels(defects)
                                                       and _labels(defects)):
        return ReviewKind.LABEL
    return ReviewKind.BOX


def classified(review: Review, finding: Finding | None) -> Review:
    """`review` with the kind it has against `finding` (the finding the inspector saw when making it)."""
    return replace(review, kind=review_kind(finding, review.verdict, review.defects))


class ImageStatus(str, Enum):
    """Where one image of the queue stands: the model's verdict until someone reviews it, then the review's."""

    NOT_INSPECTED = "not inspected"
    NORMAL = "normal"
    DEFECT = "defective"
    UNPARSED = "unparsed"
    ERROR = "error"
    ACCEPTED_NORMAL = "accepted normal"
    ACCEPTED_DEFECTIVE = "accepted defective"
    FLAGGED = "flagged"
    CORRECTED = "corrected"

    @property
    def reviewed(self) -> bool:
        return self in (ImageStatus.ACCEPTED_NORMAL, ImageStatus.ACCEPTED_DEFECTIVE, ImageStatus.FLAGGED,
                        ImageStatus.CORRECTED)


def _review_of(review: ReviewRecord | Review | None) -> Review | None:
    return review.review if isinstance(review, ReviewRecord) else review


def image_status(finding: Finding | None, review: ReviewRecord | Review | None, error: str = "") -> ImageStatus:
    """The queue status: a load error first, then the inspector's review, then the model's verdict."""
    if error:
        return ImageStatus.ERROR
    r = _review_of(review)
    if r is not None:
        if r.kind is ReviewKind.ACCEPT:
            return ImageStatus.ACCEPTED_DEFECTIVE if r.verdict is Verdict.ANOMALOUS else ImageStatus.ACCEPTED_NORMAL
        return ImageStatus.FLAGGED if r.kind is ReviewKind.FLAG else ImageStatus.CORRECTED
    if finding is None:
        return ImageStatus.NOT_INSPECTED
    return {Verdict.NORMAL: ImageStatus.NORMAL, Verdict.ANOMALOUS: ImageStatus.DEFECT}.get(
        finding.verdict, ImageStatus.UNPARSED)


def verdict_in_force(finding: Finding | None, review: ReviewRecord | Review | None) -> Verdict | None:
    """The verdict that stands for an image: the inspector's once reviewed, else the model's (None: neither)."""
    r = _review_of(review)
    if r is not None:
        return r.verdict
    return finding.verdict if finding is not None else None


@dataclass(frozen=True)
class Agreement:
    """Whether a (newer) finding agrees with the inspector's review, and why not."""

    agrees: bool
    why: str


def agreement(review: Review, finding: Finding | None, min_iou: float = 0.5) -> Agreement:
    """Does the model's answer now match the inspector's review: the verdict, the defect types, and each
    reviewed box found again (IoU >= `min_iou`)?"""
    if finding is None or finding.verdict is Verdict.UNPARSED:
        return Agreement(False, "no readable answer")
    if finding.verdict is not review.verdict:
        return Agreement(False, f"says {verdict_word(finding.verdict)}")
    if review.verdict is Verdict.NORMAL:
        return Agreement(True, "normal, as reviewed")
    missing = _labels(review.defects) - _labels(finding.defects)
    if missing:
        said = ", ".join(sorted(display_name(label) for label in _labels(finding.defects))) or "no type"
        return Agreement(False, f"names {said}, not {', '.join(sorted(display_name(m) for m in missing))}")
    boxes = [d.box for d in finding.defects if d.box is not None]
    for d in review.defects:
        if d.box is None:
            continue
        best = max((d.box.iou(b) for b in boxes), default=0.0)
        if best < min_iou:
            return Agreement(False, "no box there" if not boxes else f"box off (overlap {best:.2f})")
    return Agreement(True, "defective, as reviewed")


def acceptance(finding: Finding | None, inspection_id: int | None = None) -> Review | None:
    """The review that agrees with the model's finding; None when there is no verdict to agree with."""
    if finding is None or finding.verdict is Verdict.UNPARSED:
        return None
    defects = finding.defects if finding.verdict is Verdict.ANOMALOUS else ()
    defects = tuple(Defect(canonical_label(d.label), d.box) for d in defects)
    return Review(ReviewKind.ACCEPT, finding.verdict, defects, "", inspection_id)


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


# The edits below change what the review says; its kind is then decided by `classified` against the finding.
def with_verdict(base: Review, verdict: Verdict) -> Review:
    """The verdict is `verdict` (a normal verdict drops the defects)."""
    return replace(base, verdict=verdict, defects=() if verdict is Verdict.NORMAL else base.defects)


def with_verdict_toggled(base: Review) -> Review:
    """Normal <-> defective."""
    return with_verdict(base, Verdict.NORMAL if base.verdict is Verdict.ANOMALOUS else Verdict.ANOMALOUS)


def with_defect_added(base: Review, defect: Defect) -> Review:
    """One more defect (the verdict becomes anomalous); its label may be "" until the inspector picks one."""
    added = Defect(canonical_label(defect.label), defect.box)
    return replace(base, verdict=Verdict.ANOMALOUS, defects=base.defects + (added,))


def with_defect_removed(base: Review, index: int) -> Review:
    """The defect at `index` removed (the verdict stays; set it to normal separately)."""
    defects = base.defects[:index] + base.defects[index + 1:]
    return replace(base, defects=defects)


def with_defect_label(base: Review, index: int, label: str) -> Review:
    """The defect at `index` has type `label` (a label-only defect is added when there is none)."""
    label = canonical_label(label)
    if not label:
        raise ValueError("choose or type a defect type")
    if not base.defects:
        return with_defect_added(base, Defect(label, None))
    d = base.defects[index]
    return replace(base, defects=base.defects[:index] + (Defect(label, d.box),) + base.defects[index + 1:])


def with_defect_box(base: Review, index: int, box: Box | None) -> Review:
    """The defect at `index` is at `box` (moved, resized, redrawn or cleared); it keeps its type."""
    d = base.defects[index]
    return replace(base, defects=base.defects[:index] + (Defect(d.label, box),) + base.defects[index + 1:])


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

    def __init__(self, store: ReviewWriter, limit: int = 500, reviewer: Callable[[], str] | None = None) -> None:
        self.store = store
        self.limit = limit
        self.reviewer = reviewer or current_reviewer  # who signs the edits (asked once in the app)
        self._undo: list[ReviewEdit] = []
        self._redo: list[ReviewEdit] = []
        self.on_change: list[Callable[[int], None]] = []

    def apply(self, image_id: int, review: Review, text: str) -> ReviewRecord:
        """Write `review` as the image's current review; it can be undone."""
        return self.record(image_id, review, text, self.store.save_review(image_id, review, self.reviewer()))

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
        record = self.store.save_review(self._redo[-1].image_id, self._redo[-1].review, self.reviewer())
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
