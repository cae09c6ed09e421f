"""The guard on "Improve model", without Qt: should the inspector keep a finished run's version or discard it?

The fair test is the held-out images (accepted, never trained on: the *others*, apart from the flags it learned
from). A version that loses more than the tolerance on any of accuracy, label accuracy or mean IoU there is
recommended for *Discard*, and the verdict names every figure that fell that far. Figures are fractions (0..1);
the tolerance is in points (2 points = 0.02; for mean IoU, 0.02 of IoU). Too few held-out images to judge by
(`MIN_HELD_OUT`) give no recommendation either way; a figure the set can't define (no defective held-out image:
no label accuracy) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lriad_desktop.core.plurals import count
from lriad_desktop.core.training_runs.progress import MIN_HELD_OUT

GUARDED: tuple[tuple[str, str], ...] = (("accuracy", "accuracy"), ("label_accuracy", "label accuracy"),
                                        ("mean_iou", "mean IoU"))
DEFAULT_TOLERANCE_POINTS = 2.0
_EPS = 1e-9  # a fall of exactly the tolerance is within it, whatever the float rounding

ACTIVATE, DISCARD, UNSURE = "activate", "discard", "unsure"


@dataclass(frozen=True)
class Drop:
    """A held-out figure that fell by more than the tolerance."""

    metric: str
    before: float
    after: float

    @property
    def points(self) -> float:
        return (self.before - self.after) * 100

    @property
    def words(self) -> str:
        return dict(GUARDED)[self.metric]

    def describe(self) -> str:
        """'label accuracy 50% → 25% (−25 points)', 'mean IoU 0.40 → 0.10 (−0.30)'."""
        if self.metric == "mean_iou":  # IoU reads as a fraction; 2 points of it are 0.02
            return f"{self.words} {self.before:.2f} → {self.after:.2f} (−{self.before - self.after:.2f})"
        return f"{self.words} {self.before * 100:.0f}% → {self.after * 100:.0f}% (−{self.points:.0f} points)"


@dataclass(frozen=True)
class RunVerdict:
    """What the guard recommends for a finished run: `ACTIVATE`, `DISCARD` or `UNSURE` (too few held-out
    images), the drops past the tolerance (empty unless `DISCARD`), the held-out count and the tolerance."""

    recommendation: str
    drops: tuple[Drop, ...]
    held_out: int
    tolerance_points: float

    @property
    def discard(self) -> bool:
        return self.recommendation == DISCARD

    def fell(self) -> str:
        """'label accuracy 50% → 25% (−25 points) and mean IoU 0.40 → 0.10 (−0.30)' (or '')."""
        parts = [d.describe() for d in self.drops]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + (f" and {parts[-1]}" if parts else "")

    def sentence(self) -> str:
        """The recommendation in one sentence, for the panel and the CLI."""
        tol = f"{self.tolerance_points:g} point{'s' if self.tolerance_points != 1 else ''}"
        if self.recommendation == DISCARD:
            return (f"Recommended: Discard. On the {self.held_out} held-out images the new version lost more than "
                    f"{tol}: {self.fell()}.")
        if self.recommendation == UNSURE:
            held = "no held-out image" if not self.held_out else count(self.held_out, "held-out image")
            return (f"No recommendation: {held} {'is' if self.held_out <= 1 else 'are'} too few to tell "
                    f"({MIN_HELD_OUT} needed). Activate only if the flagged images below convince you.")
        return (f"Recommended: Activate. On the {self.held_out} held-out images no figure fell by more than {tol}.")


def _all(scores: dict[str, Any], split: str = "holdout") -> dict[str, Any]:
    return (scores.get(split) or {}).get("all") or {}


def run_verdict(before: dict[str, Any], after: dict[str, Any],
                tolerance_points: float = DEFAULT_TOLERANCE_POINTS, min_held_out: int = MIN_HELD_OUT) -> RunVerdict:
    """The guard's verdict from a run's before/after scores (split → class → figures, as `lriad train` writes
    them): the held-out set's overall figures, each compared with `tolerance_points`."""
    if not isinstance(tolerance_points, (int, float)) or not 0 <= tolerance_points <= 100:  # NaN too
        tolerance_points = DEFAULT_TOLERANCE_POINTS
    b, a = _all(before), _all(after)
    held = int(a.get("n", b.get("n", 0)) or 0)
    if held < min_held_out:
        return RunVerdict(UNSURE, (), held, tolerance_points)
    drops = []
    for metric, _ in GUARDED:
        was, now = b.get(metric), a.get(metric)
        if was is None or now is None:
            continue
        if (float(was) - float(now)) * 100 > tolerance_points + _EPS:
            drops.append(Drop(metric, float(was), float(now)))
    return RunVerdict(DISCARD if drops else ACTIVATE, tuple(drops), held, tolerance_points)


def version_verdict(metrics: dict[str, Any], tolerance_points: float = DEFAULT_TOLERANCE_POINTS) -> RunVerdict | None:
    """The verdict for a registered version's stored metrics (None when it has no before/after figures)."""
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    return run_verdict(before, after, tolerance_points) if before and after else None
