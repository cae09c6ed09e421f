"""The fusion of the MLLM's P(anomalous) with the map's score, and the greedy coreset's cover (pure, no model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lriad_desktop.core.anomaly_map.patch_map import (DEFAULT_FUSION, MAP_MIDPOINT, FusionRule, coreset, fit_fusion,
                                            fused_score, map_probability)
from lriad_desktop.core.anomaly_map.fusion import MIN_FIT_EACH


def _auroc(labels, scores) -> float:
    good = [s for t, s in zip(labels, scores) if not t]
    bad = [s for t, s in zip(labels, scores) if t]
    return float(np.mean([(b > g) + 0.5 * (b == g) for b in bad for g in good]))


def test_the_default_rule_and_its_one_sided_cases():
    assert map_probability(MAP_MIDPOINT) == 0.5 and map_probability(0.0) < 0.05 < 0.95 < map_probability(6.0)
    assert fused_score(0.9, None) == 0.9 and fused_score(None, None) is None
    assert fused_score(None, MAP_MIDPOINT) == 0.5
    # the default leans on the map: a good-looking map outweighs a model that says "defective"
    assert fused_score(0.9, 0.0) < 0.5 < fused_score(0.1, 8.0)
    assert DEFAULT_FUSION.describe().startswith("fusion: map")
    assert "(default)" in DEFAULT_FUSION.describe()
    mixed = FusionRule(map_weight=0.8, model_weight=0.2, bias=0.0, fitted_on=40)
    assert mixed.describe() == "fusion: map 0.8 + model 0.2 (fitted on 40 reviewed images)"
    assert mixed(0.5, MAP_MIDPOINT) == pytest.approx(0.5)
    assert fused_score(0.99, MAP_MIDPOINT, mixed) > fused_score(0.01, MAP_MIDPOINT, mixed)


def _reviewed(n: int, seed: int, model_noise: float, map_noise: float):
    """(P_model, map score, anomalous) of n reviewed images, each figure informative up to its noise."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.5
    p = 1 / (1 + np.exp(-(np.where(labels, 1.0, -1.0) + rng.normal(0, model_noise, n))))
    m = np.where(labels, 6.0, 0.0) + rng.normal(0, map_noise, n)
    return [(float(a), float(b), bool(t)) for a, b, t in zip(p, m, labels)]


def test_a_fit_weighs_the_figure_that_separates():
    # a map that separates and a model near chance: the fit leans on the map
    rule = fit_fusion(_reviewed(60, 1, model_noise=8.0, map_noise=1.5))
    assert rule.fitted_on == 60 and rule.shares[0] > 0.7
    test = _reviewed(200, 2, model_noise=8.0, map_noise=1.5)
    labels = [t for *_, t in test]
    fused = [rule(p, m) for p, m, _ in test]
    mean = [np.mean([p, map_probability(m)]) for p, m, _ in test]  # the old rule
    assert _auroc(labels, fused) > _auroc(labels, mean)
    # and a model that separates with a map near chance: the fit leans on the model
    flipped = fit_fusion(_reviewed(60, 3, model_noise=0.3, map_noise=30.0))
    assert flipped.shares[1] > 0.7 and "model" in flipped.describe()


def test_too_few_reviewed_images_keep_the_default():
    few = _reviewed(40, 4, 1.0, 1.0)
    only_good = [r for r in few if not r[2]]
    assert fit_fusion(only_good) == DEFAULT_FUSION
    some_bad = only_good + [r for r in few if r[2]][:MIN_FIT_EACH - 1]
    assert fit_fusion(some_bad) == DEFAULT_FUSION
    assert fit_fusion([(None, 5.0, True), (0.4, None, False)] * 10) == DEFAULT_FUSION  # incomplete pairs skipped
    assert fit_fusion([]) == DEFAULT_FUSION


def test_a_fitted_weight_never_counts_against_anomalous():
    rows = _reviewed(60, 5, model_noise=0.5, map_noise=1.0)
    inverted = [(1 - p, m, t) for p, m, t in rows]  # a model that says the opposite
    rule = fit_fusion(inverted)
    assert rule.model_weight == 0 and rule.map_weight > 0


@pytest.mark.parametrize("dim", [16, 300])  # without and with the random projection
def test_the_coreset_covers_every_row_within_the_radius_it_reports(dim):
    gen = torch.Generator().manual_seed(dim)
    rows = torch.cat([torch.randn(500, dim, generator=gen) * s for s in (0.1, 1.0, 3.0)])
    found = coreset(rows, 60, seed=1)
    assert len(set(found.indices.tolist())) == 60
    x = rows
    if dim > 128:  # the radius is measured on the coreset's own projection: redo it the same way
        g = torch.Generator().manual_seed(1)
        proj = torch.randn(dim, 128, generator=g) / np.sqrt(128)
        x = rows @ proj
    nearest = torch.cdist(x, x[found.indices]).min(dim=1).values
    assert float(nearest.max()) <= found.radius * (1 + 1e-4) + 1e-4
    assert float(nearest.max()) >= found.radius * (1 - 1e-3)  # and the radius is that cover, not a loose bound
    # greedy k-center is within twice the best cover: no chosen pair is closer than the radius
    chosen = x[found.indices]
    gaps = torch.cdist(chosen, chosen) + torch.eye(60) * 1e9
    assert float(gaps.min()) >= found.radius * (1 - 1e-3)
    assert coreset(rows, 10_000).radius == 0.0 and len(coreset(rows, 10_000).indices) == 1500
