"""How far each place of a good part usually lies from the bank: a cell's distance read against its own place.

On real photos the hottest cells of a good image are nearly always at its edges (measured: the hottest cell of
33, 39 and 40 of 40 good test images of BSData, KolektorSDD and MTD lies in the outer two cells of the 40 x 40
grid): the network sees padding there, and a part's surroundings vary more than the part. A plain top-k score then
ranks good images by their edges. `PlaceSpread` holds, for every cell of the grid, the mean and spread of the good
images' own leave-one-out distances at that place; a cell is then scored by how unusual it is *for that place*
((distance - mean) / spread), so an edge that always varies counts for little and a pit in a quiet place for much,
and a defect at the edge still shows when it is hotter than the edges of good parts ever are.

Each good image's own score is taken against the places' figures without it (what a new image meets). Needs
`MIN_PLACE_IMAGES` good images with grids of one shape; below that the bank scores plain distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

MIN_PLACE_IMAGES = 4  # leave-one-out figures from at least 3 other images
SPREAD_PRIOR = 4  # measured: with 4 good images it keeps BSData's pixel AUROC at 0.93 (0.83 without)
SPREAD_FLOOR = 0.1  # a place's spread is at least this fraction of the mean spread: a place that never varied
# on the few good images seen can't turn a small difference into a huge score


@dataclass(frozen=True)
class PlaceSpread:
    """Mean and spread of good images' distances per cell, (rows, cols) float32 each."""

    mean: np.ndarray
    spread: np.ndarray

    @classmethod
    def of(cls, grids: Sequence[np.ndarray]) -> "PlaceSpread | None":
        """The figures of good images' distance grids; None with fewer than `MIN_PLACE_IMAGES` or grids of
        different shapes (images whose aspect is kept)."""
        if len(grids) < MIN_PLACE_IMAGES or len({g.shape for g in grids}) != 1:
            return None
        stack = np.stack([np.asarray(g, np.float32) for g in grids])
        return cls._from_stack(stack)

    @classmethod
    def _from_stack(cls, stack: np.ndarray) -> "PlaceSpread":
        n = len(stack)
        mean, spread = stack.mean(axis=0), stack.std(axis=0)
        # a few images' spread is noisy: it leans towards the grid's own as if SPREAD_PRIOR more images had that
        spread = np.sqrt((n * spread ** 2 + SPREAD_PRIOR * float((spread ** 2).mean())) / (n + SPREAD_PRIOR))
        floor = SPREAD_FLOOR * float(spread.mean()) + 1e-6
        return cls(mean.astype(np.float32), np.maximum(spread, floor).astype(np.float32))

    def sound(self) -> bool:
        """Whether the figures can be used: mean and spread grids of one shape, finite, every spread above 0 (a bank
        file read back is checked with it)."""
        mean, spread = np.asarray(self.mean), np.asarray(self.spread)
        return (mean.ndim == 2 and mean.shape == spread.shape and mean.size > 0 and bool(np.isfinite(mean).all())
                and bool(np.isfinite(spread).all()) and bool((spread > 0).all()))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mean.shape)  # type: ignore[return-value]

    def relative(self, grid: np.ndarray) -> np.ndarray:
        """A distance grid read against the places: (distance - mean) / spread, per cell (the figures resized to
        the grid when its shape differs)."""
        grid = np.asarray(grid, np.float32)
        mean, spread = self.mean, self.spread
        if grid.shape != self.shape:
            import cv2

            size = (grid.shape[1], grid.shape[0])
            mean = cv2.resize(mean, size, interpolation=cv2.INTER_LINEAR)
            spread = cv2.resize(spread, size, interpolation=cv2.INTER_LINEAR)
        return (grid - mean) / spread


def leave_one_out_relative(grids: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each good image's grid read against the places' figures of the other good images."""
    stack = np.stack([np.asarray(g, np.float32) for g in grids])
    out = []
    for i in range(len(stack)):
        others = PlaceSpread._from_stack(np.delete(stack, i, axis=0))
        out.append(others.relative(stack[i]))
    return out


def as_grid(distances: Any, rows: int, cols: int) -> np.ndarray:
    """A torch or numpy vector of cell distances as a (rows, cols) float32 array."""
    values = distances.numpy() if hasattr(distances, "numpy") else np.asarray(distances)
    return values.reshape(rows, cols).astype(np.float32)
