"""How long training takes: the measured time per step and the time left, as one estimate that settles.

The first step of a run carries the trainer's warm-up (the first generations, caches), and on a shared
machine single steps jump around; the mean since the start (elapsed / steps) therefore wanders for most of
a run and the time left with it. `StepClock` uses the median of the recent step durations, leaving the
first step out once there are others, and adds what comes after the last step (the evaluation of the new
adapter, measured as the one before training). With a time budget ("train for 10 minutes") the run stops
at the budget, and the time left is the budget's rest.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

FALLBACK_S_PER_STEP = 2.0  # a guess for a machine that has never trained: the bundled model on a busy 2-core CPU
STEP_MARGIN = 1.25  # with a time budget the step count is a ceiling: the budget, not the count, ends the run


@dataclass
class StepClock:
    """Step durations as they are measured; the estimate is the median of the last `window` of them."""

    window: int = 15
    started: float = field(default_factory=time.perf_counter)
    before_s: float = 0.0  # training time spent before the first step (loading, a warm start): inside a budget
    _ends: list[float] = field(default_factory=list)

    def step_done(self, now: float | None = None) -> None:
        """Record the end of a step (now, unless told)."""
        self._ends.append(time.perf_counter() if now is None else now)

    @property
    def steps(self) -> int:
        return len(self._ends)

    @property
    def elapsed_s(self) -> float:
        """Seconds from the start to the last recorded step."""
        return (self._ends[-1] - self.started) if self._ends else 0.0

    @property
    def used_s(self) -> float:
        """The time a budget counts: what came before the first step and the steps so far."""
        return self.before_s + self.elapsed_s

    def durations(self) -> list[float]:
        """Each step's duration, in order."""
        marks = [self.started, *self._ends]
        return [b - a for a, b in zip(marks, marks[1:])]

    @property
    def s_per_step(self) -> float | None:
        """Seconds a step takes now (None before the first step)."""
        d = self.durations()
        if not d:
            return None
        recent = d[1:][-self.window:] if len(d) > 1 else d  # the first step is warm-up: left out once others exist
        return statistics.median(recent)

    def eta_s(self, max_steps: int, budget_s: float | None = None, after_s: float = 0.0) -> float | None:
        """Seconds left: the steps still to go at the measured pace (or the budget's rest, if sooner) plus
        `after_s` for what follows the last step; None before the first step."""
        pace = self.s_per_step
        if pace is None:
            return None
        left = max(0, max_steps - self.steps) * pace
        if budget_s is not None:
            left = min(left, max(0.0, budget_s - self.used_s))
        return left + max(0.0, after_s)

    def out_of_time(self, budget_s: float | None) -> bool:
        """Whether one more step would end past the time budget."""
        pace = self.s_per_step
        return budget_s is not None and pace is not None and self.used_s + pace > budget_s


def steps_for_minutes(minutes: float, s_per_step: float | None) -> int:
    """The step ceiling for a run of `minutes` at `s_per_step` (the fallback pace when none was measured)."""
    pace = s_per_step if s_per_step and s_per_step > 0 else FALLBACK_S_PER_STEP
    return max(1, math.ceil(minutes * 60 / pace * STEP_MARGIN))


def minutes_for_steps(steps: int, s_per_step: float | None) -> float:
    """About how many minutes `steps` take at `s_per_step` (the fallback pace when none was measured)."""
    pace = s_per_step if s_per_step and s_per_step > 0 else FALLBACK_S_PER_STEP
    return steps * pace / 60


def measured_s_per_step(runs: Sequence[Any], base: str) -> float | None:
    """The pace of the newest finished training run of `base` (runs as `ReviewStore.training_runs()` lists
    them), or None when this machine has not trained that model yet."""
    for run in sorted(runs, key=lambda r: r.id, reverse=True):
        metrics = run.metrics or {}
        pace = metrics.get("s_per_step")
        if run.status == "done" and pace and metrics.get("base_path", base) == base:
            return float(pace)
    return None
