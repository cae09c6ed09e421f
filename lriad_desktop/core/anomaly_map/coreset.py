"""PatchCore's greedy k-center coreset: the few thousand good-image cells a bank keeps out of many.

A bank of every good cell would make each map slow; the coreset keeps rows that cover the rest within a known radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Coreset:
    """Rows chosen by the greedy k-center coreset, and the radius they cover the rest within."""

    indices: Any  # torch.long, into the rows given
    radius: float  # every row given lies within this distance of a chosen one (on the projection, if any)


def coreset(features: Any, size: int, seed: int = 0, projection_dim: int = 128) -> Coreset:
    """PatchCore's greedy k-center coreset: `size` rows, each the row farthest from those already chosen
    (distances on a seeded random projection to `projection_dim` dimensions when the features are wider).
    One matrix-vector product per pick on squared norms, so 16,384 picks among 65,536 rows take seconds."""
    import torch

    n = features.shape[0]
    if size >= n:
        return Coreset(torch.arange(n), 0.0)
    gen = torch.Generator().manual_seed(seed)
    x = features.float()
    if x.shape[1] > projection_dim:
        proj = torch.randn(x.shape[1], projection_dim, generator=gen) / math.sqrt(projection_dim)
        x = x @ proj
    x = x.contiguous()
    sq = (x * x).sum(1)
    chosen = torch.empty(size, dtype=torch.long)
    pick = int(torch.randint(n, (1,), generator=gen))
    chosen[0] = pick
    nearest = torch.mv(x, x[pick]).mul_(-2).add_(sq).add_(sq[pick])
    d = torch.empty_like(nearest)
    for i in range(1, size):
        pick = int(torch.argmax(nearest))
        chosen[i] = pick
        torch.mv(x, x[pick], out=d)
        d.mul_(-2).add_(sq).add_(sq[pick])
        torch.minimum(nearest, d, out=nearest)
    return Coreset(chosen, float(nearest.max().clamp_min(0).sqrt()))


def greedy_coreset(features: Any, size: int, seed: int = 0, projection_dim: int = 128) -> Any:
    """Indices of `size` rows chosen by PatchCore's greedy k-center coreset (`coreset`)."""
    return coreset(features, size, seed, projection_dim).indices
