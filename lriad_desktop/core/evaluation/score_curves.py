"""Ranking figures of anomaly scores against the truth: image AUROC, average precision, the ROC and
precision–recall curves, and the confusion counts at one threshold (an image is called defective when its
score is at or above the threshold).

Ties are handled as the field does: AUROC counts a tied defective/good pair as half right (the
Mann–Whitney statistic, the area under the ROC curve drawn through tied scores diagonally); average
precision sums precision × recall gained over the distinct scores, highest first (scikit-learn's
`average_precision_score`). Both are undefined (None) when the set lacks defective or good images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Confusion:
    """What a threshold does on a set: defective images caught (tp) and missed (fn), good images passed
    (tn) and falsely rejected (fp)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def false_positive_rate(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None


def _check(scores: Sequence[float], truth: Sequence[bool]) -> None:
    if len(scores) != len(truth):
        raise ValueError(f"{len(scores)} scores for {len(truth)} truths")


def confusion_at(scores: Sequence[float], truth: Sequence[bool], threshold: float) -> Confusion:
    """The confusion counts when score ≥ `threshold` means defective (`truth` True = defective)."""
    _check(scores, truth)
    tp = sum(1 for s, t in zip(scores, truth) if t and s >= threshold)
    fp = sum(1 for s, t in zip(scores, truth) if not t and s >= threshold)
    positives = sum(1 for t in truth if t)
    return Confusion(tp, fp, len(truth) - positives - fp, positives - tp)


def _groups(scores: Sequence[float], truth: Sequence[bool]) -> list[tuple[float, int, int]]:
    """(score, defective, good) per distinct score, highest score first."""
    counts: dict[float, list[int]] = {}
    for s, t in zip(scores, truth):
        c = counts.setdefault(float(s), [0, 0])
        c[0 if t else 1] += 1
    return [(s, c[0], c[1]) for s, c in sorted(counts.items(), reverse=True)]


def auroc(scores: Sequence[float], truth: Sequence[bool]) -> float | None:
    """The area under the ROC curve: the chance that a defective image scores above a good one (ties ½)."""
    _check(scores, truth)
    positives = sum(1 for t in truth if t)
    negatives = len(truth) - positives
    if not positives or not negatives:
        return None
    wins = 0.0
    good_below = negatives
    for _, pos, neg in _groups(scores, truth):
        good_below -= neg
        wins += pos * (good_below + 0.5 * neg)
    return wins / (positives * negatives)


def average_precision(scores: Sequence[float], truth: Sequence[bool]) -> float | None:
    """Average precision: Σ (recall_k − recall_{k−1}) · precision_k over the distinct scores, highest first."""
    _check(scores, truth)
    positives = sum(1 for t in truth if t)
    if not positives or positives == len(truth):
        return None
    ap = 0.0
    tp = fp = 0
    for _, pos, neg in _groups(scores, truth):
        tp, fp = tp + pos, fp + neg
        ap += (pos / positives) * (tp / (tp + fp))
    return ap


def roc_curve(scores: Sequence[float], truth: Sequence[bool]) -> list[tuple[float, float, float]]:
    """(false positive rate, true positive rate, threshold) from (0, 0) to (1, 1); [] when undefined."""
    _check(scores, truth)
    positives = sum(1 for t in truth if t)
    negatives = len(truth) - positives
    if not positives or not negatives:
        return []
    points = [(0.0, 0.0, float("inf"))]
    tp = fp = 0
    for s, pos, neg in _groups(scores, truth):
        tp, fp = tp + pos, fp + neg
        points.append((fp / negatives, tp / positives, s))
    return points


def pr_curve(scores: Sequence[float], truth: Sequence[bool]) -> list[tuple[float, float, float]]:
    """(recall, precision, threshold) as the threshold falls, starting at recall 0 with precision 1; [] when
    there is no defective image."""
    _check(scores, truth)
    positives = sum(1 for t in truth if t)
    if not positives:
        return []
    points = [(0.0, 1.0, float("inf"))]
    tp = fp = 0
    for s, pos, neg in _groups(scores, truth):
        tp, fp = tp + pos, fp + neg
        points.append((tp / positives, tp / (tp + fp), s))
    return points


def pr_steps(pr: Sequence[tuple[float, float, float]]) -> tuple[tuple[float, float], ...]:
    """The points of `pr_curve` as the step curve whose area is the average precision (each recall gain
    drawn at its precision)."""
    if not pr:
        return ()
    out = [(pr[0][0], pr[0][1])]
    for (r0, _, _), (r1, p1, _) in zip(pr, pr[1:]):
        out += [(r0, p1), (r1, p1)]
    return tuple(out)
