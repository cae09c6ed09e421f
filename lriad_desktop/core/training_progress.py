"""One training run as the app follows it, without Qt: the protocol's events folded into one progress
value, and the before/after comparison of a finished run. (How it reads is `ui/training_text.py`.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lriad_desktop.core.train_protocol import (AdapterSaved, DataPrepared, Evaluated, RunCancelled, RunDone, RunFailed,
                                               Step, TrainingEvent, TrainingSetUp)

COMPARED: tuple[tuple[str, str], ...] = (("accuracy", "Accuracy"), ("f1", "F1"), ("mean_iou", "Mean IoU"))
SPLITS: tuple[tuple[str, str], ...] = (("flagged", "Flagged"), ("holdout", "Held out"))


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
    data: DataPrepared | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    version_id: int | None = None
    adapter: str = ""
    minutes: float | None = None
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
        elif isinstance(event, AdapterSaved):
            self.phase = "evaluating"
            self.classes = dict(event.classes or self.classes)
        elif isinstance(event, RunDone):
            self.phase, self.version_id, self.adapter = "done", event.version_id, event.adapter
            self.minutes = event.minutes
        elif isinstance(event, RunCancelled):
            self.phase = "cancelled"
        elif isinstance(event, RunFailed):
            self.phase, self.error = "failed", event.message


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
