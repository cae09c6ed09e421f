"""How long a run of "Improve model" trains, and what it trained of what it was asked, without Qt.

A run "for about M minutes" spends them on training: the supervised warm start (when a flag names a defect the
model has never said) and GRPO, each stopping when one more step would pass its share. The warm start may take
at most `WARM_SHARE` of the minutes (model loading included), GRPO the rest; the checks before and after come on
top, as the Improve dialog says. A run that did less than it was asked (the warm start cut short, too few GRPO
steps to learn from, or training far past the minutes because one step takes longer than them) says so in plain
words (`TrainedLength.shortfalls`), in the panel and in the version's record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from lriad_desktop.core.plurals import count

WARM_SHARE = 0.5  # of a run's minutes, the most the warm start may take
FEW_STEPS = 5  # fewer GRPO steps than this in a run by minutes have barely moved the model
OVERRUN = 1.5  # training longer than this times the minutes asked is said


def warm_budget_s(minutes: float | None) -> float | None:
    """The warm start's share of a run of `minutes` in seconds (None: no time budget)."""
    return None if minutes is None else minutes * 60 * WARM_SHARE


@dataclass(frozen=True)
class TrainedLength:
    """What a run was asked (minutes, or exactly so many GRPO steps) and what it trained: the warm start's steps
    of those planned (and the labels it teaches), GRPO's steps, and the seconds spent training (both stages)."""

    asked_minutes: float | None = None
    asked_steps: int | None = None
    warm_labels: tuple[str, ...] = ()
    warm_steps: int = 0
    warm_planned: int = 0
    grpo_steps: int = 0
    training_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the protocol's `done` event and the version's metrics)."""
        return {**asdict(self), "warm_labels": list(self.warm_labels)}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> "TrainedLength | None":
        """Back from `as_dict` (None for an empty or foreign dict: an older run said nothing of it)."""
        if not value:
            return None
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in value.items() if k in known}
        kwargs["warm_labels"] = tuple(str(v) for v in kwargs.get("warm_labels", ()))
        try:
            return cls(**kwargs)
        except TypeError:
            return None

    def shortfalls(self) -> list[str]:
        """In plain words, each way the run trained less than it was asked (empty when it did what it was asked)."""
        said = []
        minutes = self.asked_minutes
        asked = count(minutes, "minute") if minutes is not None else ""
        if self.warm_planned and self.warm_steps < self.warm_planned:
            labels = " and ".join(f"“{label}”" for label in self.warm_labels) or "the new defect"
            enough = math.ceil(minutes * self.warm_planned / max(self.warm_steps, 1)) if minutes else 0
            more = f" Train for about {count(enough, 'minute')} to teach it." if minutes else ""
            said.append(f"The warm start that teaches {labels} did only {self.warm_steps} of its "
                        f"{self.warm_planned} steps in {asked or 'the time'}: the new version may still not name "
                        f"{'it' if len(self.warm_labels) <= 1 else 'them'}.{more}")
        if self.asked_steps is not None and self.grpo_steps < self.asked_steps:
            said.append(f"It did {self.grpo_steps} of the {count(self.asked_steps, 'GRPO step')} asked.")
        elif minutes is not None and self.grpo_steps < FEW_STEPS:
            said.append(f"Only {count(self.grpo_steps, 'GRPO step')} fit in {asked}: too few to learn much from "
                        "your flags.")
        if minutes is not None and self.training_s > OVERRUN * minutes * 60:
            said.append(f"Training took {_duration(self.training_s)}, more than the {asked} asked: loading the model "
                        "and a single step take that long on this machine.")
        return said


def _duration(seconds: float) -> str:
    if seconds < 90:
        return count(round(seconds), "second")
    return count(round(seconds / 60), "minute")
