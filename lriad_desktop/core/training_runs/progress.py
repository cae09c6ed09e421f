"""One training run as the app follows it, without Qt: the protocol's events folded into one progress
value, the before/after comparison of a finished run, and what that comparison can and can't say
(`judge`: held-out images first, boxes that vanished, figures that fell). (How it reads is
`ui/improve/training_text.py`.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lriad_desktop.core.training_runs.protocol import (AdapterSaved, DataPrepared, Evaluated, RunCancelled, RunDone, RunFailed,
                                               Step, TrainingEvent, TrainingSetUp)

COMPARED: tuple[tuple[str, str], ...] = (("accuracy", "Accuracy"), ("label_accuracy", "Label accuracy"), ("f1", "F1"),
                                        ("mean_iou", "Mean IoU"))
SPLITS: tuple[tuple[str, str], ...] = (("holdout", "Held out"), ("flagged", "Flagged"))  # the headline first
MIN_HELD_OUT = 8  # fewer held-out images than this are too few to judge a run by
FALL = 0.005  # a before/after figure lower by more than this fell
TRAINING_FALL = 0.15  # a class's running success this far under its best during the run fell


@dataclass
class TrainingProgress:
    """Everything the events of one run said so far; `apply` folds in the next event."""

    phase: str = "starting"  # starting, evaluating, training, saving, done, cancelled, failed
    step: int = 0
    max_steps: int = 0
    eta_s: float | None = None
    s_per_step: float | None = None
    budget_s: float | None = None  # a run for so many minutes
    elapsed_s: float | None = None  # training time so far
    rewards: list[float] = field(default_factory=list)
    kls: list[float] = field(default_factory=list)
    reward_parts: dict[str, float] = field(default_factory=dict)
    classes: dict[str, dict[str, float]] = field(default_factory=dict)
    best_success: dict[str, float] = field(default_factory=dict)  # per class, the highest running success so far
    data: DataPrepared | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    version_id: int | None = None
    adapter: str = ""
    minutes: float | None = None
    trained: dict[str, Any] = field(default_factory=dict)  # what it trained of what it was asked (`TrainedLength`)
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "cancelled", "failed")

    def apply(self, event: TrainingEvent) -> None:
        """Fold one event in (an `Output` line changes nothing)."""
        if isinstance(event, DataPrepared):
            self.phase, self.data = "evaluating", event
        elif isinstance(event, Evaluated):
            if event.when == "before":
                self.before = event.scores
            else:
                self.after, self.phase = event.scores, "saving"
        elif isinstance(event, TrainingSetUp):
            self.phase, self.max_steps, self.budget_s = "training", event.max_steps, event.budget_s
        elif isinstance(event, Step):
            self.phase, self.step = "training", event.step
            self.max_steps = event.max_steps or self.max_steps
            self.eta_s, self.s_per_step, self.elapsed_s = event.eta_s, event.s_per_step, event.elapsed_s
            self.rewards.append(float(event.reward))
            self.kls.append(float(event.kl))
            self.reward_parts = dict(event.rewards)
            self.classes = dict(event.classes or self.classes)
            self._note_best()
        elif isinstance(event, AdapterSaved):
            self.phase = "evaluating"
            self.classes = dict(event.classes or self.classes)
            self._note_best()
        elif isinstance(event, RunDone):
            self.phase, self.version_id, self.adapter = "done", event.version_id, event.adapter
            self.minutes, self.trained = event.minutes, dict(event.trained)
        elif isinstance(event, RunCancelled):
            self.phase = "cancelled"
        elif isinstance(event, RunFailed):
            self.phase, self.error = "failed", event.message

    def _note_best(self) -> None:
        for name, stats in self.classes.items():
            success = stats.get("success")
            if success is not None:
                self.best_success[name] = max(self.best_success.get(name, success), float(success))

    def training_falls(self) -> tuple["Fall", ...]:
        """Classes whose running success during the run ended well under their best (e.g. 32 % → 2 %)."""
        falls = []
        for name, best in sorted(self.best_success.items()):
            last = (self.classes.get(name) or {}).get("success")
            if last is not None and best - float(last) >= TRAINING_FALL:
                falls.append(Fall("training", name, "success", best, float(last)))
        return tuple(falls)


# --- before / after ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricChange:
    """One metric before and after a run."""

    name: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class ComparisonRow:
    """One line of the before/after table: a split (flagged / held out) and a defect class (or 'all')."""

    split: str
    defect_class: str
    n: int
    changes: tuple[MetricChange, ...]


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[ComparisonRow]:
    """Rows for each split: 'all' first, then the classes alphabetically."""
    rows = []
    for key, title in SPLITS:
        b, a = before.get(key) or {}, after.get(key) or {}
        classes = sorted(set(b) | set(a), key=lambda c: (c != "all", c))
        for cls in classes:
            sb, sa = b.get(cls) or {}, a.get(cls) or {}
            changes = tuple(MetricChange(m, sb.get(m), sa.get(m)) for m, _ in COMPARED)
            rows.append(ComparisonRow(title, cls, int(sa.get("n", sb.get("n", 0)) or 0), changes))
    return rows


# --- what the comparison can say ------------------------------------------------------------------
@dataclass(frozen=True)
class Fall:
    """A figure that went down: in a split ("holdout", "flagged", or "training" for the running success
    during the run), for a defect class (or "all"), which metric, from and to."""

    split: str
    defect_class: str
    metric: str
    before: float
    after: float


@dataclass(frozen=True)
class RunJudgement:
    """What a finished run's figures can say: how many images each split has, whether the held-out ones are
    enough to judge it by, the boxes drawn before and after (None: figures from before boxes were counted),
    whether the images have boxes to find, and every figure that fell."""

    held_out: int
    flagged: int
    judgeable: bool
    boxes_before: int | None
    boxes_after: int | None
    boxed_truth: bool
    falls: tuple[Fall, ...]
    iou_gone: bool = False  # mean IoU was above 0 and is 0 now

    @property
    def boxes_gone(self) -> bool:
        """The new version draws no boxes where the one before drew some (or its boxes now miss entirely)."""
        if self.boxes_before is not None and self.boxes_after is not None:
            return self.boxes_after == 0 and self.boxes_before > 0
        return self.iou_gone

    @property
    def draws_no_boxes(self) -> bool:
        """The new version draws no box at all, though the images have defects with boxes."""
        return self.boxes_after == 0 and self.boxed_truth


def _all(scores: dict[str, Any], split: str) -> dict[str, Any]:
    return (scores.get(split) or {}).get("all") or {}


def _boxes(scores: dict[str, Any]) -> int | None:
    counts = [_all(scores, key).get("boxes") for key, _ in SPLITS if _all(scores, key)]
    return None if not counts or any(c is None for c in counts) else int(sum(counts))


def judge(before: dict[str, Any], after: dict[str, Any], training: tuple[Fall, ...] = (),
          min_held_out: int = MIN_HELD_OUT) -> RunJudgement:
    """Judge a run from its before/after scores (the shape `lriad train` writes: split → class → figures) and
    the falls seen during it (`TrainingProgress.training_falls`)."""
    falls = []
    iou_gone = False
    for key, _ in SPLITS:
        b, a = before.get(key) or {}, after.get(key) or {}
        for cls in sorted(set(b) & set(a), key=lambda c: (c != "all", c)):
            for metric, _ in COMPARED:
                was, now = (b.get(cls) or {}).get(metric), (a.get(cls) or {}).get(metric)
                if was is not None and now is not None and now < was - FALL:
                    falls.append(Fall(key, cls, metric, float(was), float(now)))
                    iou_gone = iou_gone or (metric == "mean_iou" and cls == "all" and now == 0)
    held = int(_all(after, "holdout").get("n", _all(before, "holdout").get("n", 0)) or 0)
    flagged = int(_all(after, "flagged").get("n", _all(before, "flagged").get("n", 0)) or 0)
    boxed = any(_all(after, key).get("mean_iou") is not None for key, _ in SPLITS)
    return RunJudgement(held, flagged, held >= min_held_out, _boxes(before), _boxes(after), boxed,
                        tuple(falls) + tuple(training), iou_gone)
