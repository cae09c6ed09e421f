"""Fusing the anomaly map's score with the MLLM's P(anomalous) into one anomaly score.

A `FusionRule` adds the two on the log-odds scale: the map's normalised score counted from
`MAP_MIDPOINT` good-image spreads (the map's own log-odds, see `map_probability`) and the MLLM's
logit, each with a weight, plus a bias; the result goes back through the logistic. `DEFAULT_FUSION` is
the rule measured best before any image is reviewed (benchmarks/anomaly_map_auroc.py: the demo
model's verdict is near chance on a line-like set, and every weight it gets lowers the fusion's
AUROC there, so the default leans on the map); `fit_fusion` fits an object's own rule on its reviewed
images once there are enough of both kinds (a two-weight logistic regression, weights kept >= 0).
Pure functions, numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

MAP_MIDPOINT = 3.0  # a normalised map score this many good-image spreads above their mean reads as P = 0.5
MIN_FIT_EACH = 4  # reviewed images of each kind (normal, anomalous) before a rule is fitted
_CLIP = 1e-4  # probabilities are clipped to [_CLIP, 1 - _CLIP] before their logit


def map_probability(score: float) -> float:
    """A normalised map score as a probability of anomalous: a logistic centred `MAP_MIDPOINT` good-image
    spreads above the good images' mean (good images sit near 0), one spread wide."""
    return float(1.0 / (1.0 + np.exp(-(float(score) - MAP_MIDPOINT))))


def _logit(p: float) -> float:
    p = min(max(float(p), _CLIP), 1 - _CLIP)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class FusionRule:
    """P(anomalous) = logistic(bias + map_weight * (map score - MAP_MIDPOINT) + model_weight * logit(P_model))."""

    map_weight: float = 1.0
    model_weight: float = 0.0
    bias: float = 0.0
    fitted_on: int = 0  # reviewed images the rule was fitted on; 0: the default rule

    def __call__(self, mllm_probability: float | None, map_score: float | None) -> float | None:
        """The fused P(anomalous); with only one of the two, that one's own probability; None with neither."""
        if map_score is None:
            return None if mllm_probability is None else float(mllm_probability)
        if mllm_probability is None:
            return map_probability(map_score)
        z = self.bias + self.map_weight * (float(map_score) - MAP_MIDPOINT) + self.model_weight * _logit(mllm_probability)
        return float(1.0 / (1.0 + math.exp(-min(max(z, -60.0), 60.0))))

    @property
    def shares(self) -> tuple[float, float]:
        """(map, model): each weight's share of their sum."""
        total = self.map_weight + self.model_weight
        return (1.0, 0.0) if total <= 0 else (self.map_weight / total, self.model_weight / total)

    def describe(self) -> str:
        """One line for the finding, e.g. "fusion: map 0.8 + model 0.2 (fitted on 40 reviewed images)"."""
        m, p = self.shares
        how = f"fitted on {self.fitted_on} reviewed images" if self.fitted_on else "default"
        if p == 0:
            return f"fusion: map alone ({how})"
        if m == 0:
            return f"fusion: model alone ({how})"
        return f"fusion: map {m:.1f} + model {p:.1f} ({how})"


DEFAULT_FUSION = FusionRule(map_weight=1.0, model_weight=0.0)


def fused_score(mllm_probability: float | None, map_score: float | None,
                rule: FusionRule | None = None) -> float | None:
    """The fused anomaly score with `rule` (default `DEFAULT_FUSION`); whichever exists when only one does;
    None when neither."""
    return (rule or DEFAULT_FUSION)(mllm_probability, map_score)


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, steps: int = 50) -> np.ndarray:
    """Weights (last one the bias) of an L2-regularised logistic regression, by Newton's method."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -60, 60)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_fusion(pairs: Iterable[tuple[float | None, float | None, bool]]) -> FusionRule:
    """An object's fusion rule from its reviewed images: `pairs` of (MLLM P(anomalous), normalised map score,
    reviewed anomalous). Images lacking either figure are skipped; with fewer than `MIN_FIT_EACH` of each kind,
    `DEFAULT_FUSION`. A weight that comes out negative (the figure counts against anomalous: noise on so few
    images) drops that figure and the other is refitted alone."""
    rows = [(float(p), float(m), bool(t)) for p, m, t in pairs if p is not None and m is not None]
    y = np.array([t for _, _, t in rows], float)
    if len(rows) == 0 or min(int(y.sum()), int(len(y) - y.sum())) < MIN_FIT_EACH:
        return DEFAULT_FUSION
    x = np.array([[m - MAP_MIDPOINT, _logit(p)] for p, m, _ in rows])
    used = [0, 1]
    while True:
        w = _fit_logistic(x[:, used], y)
        if (w[:-1] >= 0).all() or len(used) == 1:
            break
        used = [used[int(np.argmax(w[:-1]))]]
    weights = dict(zip(used, np.maximum(w[:-1], 0.0)))
    rule = FusionRule(float(weights.get(0, 0.0)), float(weights.get(1, 0.0)), float(w[-1]), len(rows))
    return rule if rule.map_weight + rule.model_weight > 0 else DEFAULT_FUSION
