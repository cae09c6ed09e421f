"""The anomaly map: how far each part of an image is from everything seen on the object's good images.

A memory bank per object holds the vision-tower features (`core.vision_features`) of its good
images (golden samples, accepted-normal images); a large bank is thinned with PatchCore's greedy
coreset. An image's map is each cell's distance to its nearest bank feature, upsampled and smoothed
to the image; its score is the map's maximum cell (or a top-k mean), normalised by the good images'
own leave-one-out scores so that one threshold means the same on every object. Boxes are the
connected regions of the map above the highest good-image score, in original-image pixels.

A bank knows the model (folder, version, weights fingerprint) and feature it was built with; a bank
from another model is refused with `StaleBank`, never silently compared.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from lriad_desktop.core.finding import Box
from lriad_desktop.core.vision_features import CellFeatures, VisionTower

DEFAULT_MAX_BANK = 16_384  # features kept after the coreset (PatchCore keeps 1-10 % of a large bank)
MAX_LEAVE_ONE_OUT = 64  # good images scored leave-one-out for the normalisation (a seeded sample beyond)
BANK_FORMAT = 1
_BATCH = 16


class AnomalyMapError(ValueError):
    """A bank can't be built, loaded or used; the message is one sentence for the inspector."""


class EmptyBank(AnomalyMapError):
    """No good images to build a bank from."""


class StaleBank(AnomalyMapError):
    """The bank was built with another model (or feature) than the one now loaded."""


@dataclass(frozen=True)
class BankIdentity:
    """What a bank was built with; a bank is only used with the same identity."""

    model_version: str
    fingerprint: str  # `vision_features.model_fingerprint` of the model folder (+ adapter)
    feature: str  # `"merged"` or `"block:K"` (`vision_features.parse_feature`)

    @classmethod
    def of(cls, tower: VisionTower, feature: str | None = None) -> "BankIdentity":
        """The identity a bank built now with `tower` (and `feature`, else the tower's default) would have."""
        return cls(tower.model_version, tower.fingerprint, feature or tower.default_feature)


@dataclass(frozen=True)
class AnomalyMap:
    """One image's map and what it says."""

    heat: np.ndarray  # (height, width) float32 in original-image pixels, in normalised units (see `score`)
    cells: np.ndarray  # (rows, cols) float32 raw nearest-neighbour distance of each cell
    raw_score: float  # the image score before normalisation
    score: float  # (raw - good mean) / good spread: ~0 on good images, larger is more anomalous
    boxes: tuple[Box, ...]  # regions above the highest good-image score, original-image pixels
    image_size: tuple[int, int]

    @property
    def hottest_cell(self) -> tuple[int, int]:
        """(row, col) of the cell farthest from the bank."""
        r, c = np.unravel_index(int(np.argmax(self.cells)), self.cells.shape)
        return int(r), int(c)


def image_score(distances: Any, top_k: int = 1) -> float:
    """The image score from its cells' distances: the maximum (`top_k` 1) or the mean of the `top_k` largest."""
    flat = distances.reshape(-1)
    k = max(1, min(int(top_k), flat.numel()))
    return float(flat.topk(k).values.mean())


def nearest_distances(queries: Any, bank: Any, chunk: int = 4096, query_positions: Any = None,
                      bank_positions: Any = None, reach: float | None = None) -> Any:
    """Euclidean distance from each query row to its nearest bank row (torch, chunked to bound memory).

    With `reach` (and both positions, fractions of the image), only bank rows at most `reach` away from
    the query's own place count: a part held in a fixture is compared with the same place on good parts.
    """
    import torch

    out = []
    for start in range(0, queries.shape[0], chunk):
        d = torch.cdist(queries[start:start + chunk], bank)
        best = d.min(dim=1).values
        if reach is not None:
            gap = torch.cdist(query_positions[start:start + chunk], bank_positions, p=float("inf"))
            near = d.masked_fill(gap > reach, float("inf")).min(dim=1).values
            best = torch.where(torch.isinf(near), best, near)  # nothing kept near that place: anywhere
        out.append(best)
    return torch.cat(out) if out else queries.new_zeros(0)


def greedy_coreset(features: Any, size: int, seed: int = 0, projection_dim: int = 128) -> Any:
    """Indices of `size` rows chosen by PatchCore's greedy k-center coreset (on a random projection)."""
    import torch

    n = features.shape[0]
    if size >= n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    x = features
    if features.shape[1] > projection_dim:
        proj = torch.randn(features.shape[1], projection_dim, generator=gen) / math.sqrt(projection_dim)
        x = features @ proj
    chosen = torch.empty(size, dtype=torch.long)
    chosen[0] = int(torch.randint(n, (1,), generator=gen))
    nearest = torch.cdist(x, x[chosen[0]][None]).squeeze(1)
    for i in range(1, size):
        pick = int(torch.argmax(nearest))
        chosen[i] = pick
        nearest = torch.minimum(nearest, torch.cdist(x, x[pick][None]).squeeze(1))
    return chosen


class MemoryBank:
    """The good images' features of one object, with the leave-one-out scores that normalise its maps."""

    def __init__(self, object_name: str, identity: BankIdentity, features: Any, good_scores: Sequence[float],
                 n_images: int, top_k: int = 1, built_at: float | None = None, build_seconds: float = 0.0,
                 positions: Any = None, reach: float | None = None) -> None:
        if reach is not None and positions is None:
            raise ValueError("a bank with a reach needs its features' positions")
        self.object_name = object_name
        self.identity = identity
        self.features = features
        self.positions = positions  # (size, 2) cell centres, fractions of the image; None: not kept
        self.reach = reach  # compare a cell only with bank cells this near its place (fraction); None: anywhere
        self.good_scores = tuple(float(s) for s in good_scores)
        self.n_images = n_images
        self.top_k = top_k
        self.built_at = time.time() if built_at is None else built_at
        self.build_seconds = build_seconds

    @property
    def size(self) -> int:
        """Features in the bank (after the coreset)."""
        return int(self.features.shape[0])

    @property
    def good_mean(self) -> float:
        """Mean leave-one-out score of the good images."""
        return float(np.mean(self.good_scores))

    @property
    def good_spread(self) -> float:
        """Standard deviation of the good images' scores, floored so a near-constant set can't divide by ~0."""
        return max(float(np.std(self.good_scores)), 0.05 * abs(self.good_mean), 1e-6)

    @property
    def box_threshold(self) -> float:
        """Raw distance above which a cell counts as a region: the highest good-image score."""
        return float(max(self.good_scores))

    def normalise(self, raw: float | np.ndarray) -> float | np.ndarray:
        """Raw distance(s) in the object's units: (raw - good mean) / good spread."""
        return (raw - self.good_mean) / self.good_spread

    def check(self, identity: BankIdentity) -> None:
        """Raise `StaleBank` unless the bank was built with `identity`."""
        if identity != self.identity:
            what = "feature" if identity.feature != self.identity.feature else "model"
            raise StaleBank(f"The anomaly-map bank of {self.object_name!r} was built with {self.identity.model_version} "
                            f"({self.identity.feature}); the {what} is now {identity.model_version} "
                            f"({identity.feature}): rebuild it from the good images")

    def cell_distances(self, cells: CellFeatures) -> Any:
        """(rows, cols) nearest-bank distances of one image's cells."""
        return nearest_distances(cells.values, self.features, query_positions=cells.positions,
                                 bank_positions=self.positions, reach=self.reach).reshape(cells.rows, cells.cols)

    def anomaly_map(self, cells: CellFeatures, smoothing: float = 0.5) -> AnomalyMap:
        """The map of one image: cell distances upsampled to the model input, smoothed (Gaussian, sigma
        `smoothing` cells), resized to the original image; score and boxes from it."""
        import cv2

        dist = self.cell_distances(cells)
        raw = image_score(dist, self.top_k)
        grid = dist.numpy().astype(np.float32)
        in_w, in_h = cells.input_size
        up = cv2.resize(grid, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        sigma = smoothing * in_w / cells.cols
        if sigma > 0:
            up = cv2.GaussianBlur(up, (0, 0), sigmaX=sigma, sigmaY=sigma)
        w, h = cells.image_size
        heat = cv2.resize(up, (w, h), interpolation=cv2.INTER_LINEAR)
        boxes = regions(heat, self.box_threshold)
        return AnomalyMap(np.asarray(self.normalise(heat), np.float32), grid, raw, float(self.normalise(raw)),
                          boxes, (w, h))

    def to_file(self, path: str | os.PathLike) -> Path:
        """Save the bank (safetensors: no pickle), atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": str(BANK_FORMAT), "object_name": self.object_name, "model_version": self.identity.model_version,
                "fingerprint": self.identity.fingerprint, "feature": self.identity.feature,
                "good_scores": json.dumps(self.good_scores), "n_images": str(self.n_images), "top_k": str(self.top_k),
                "built_at": repr(self.built_at), "build_seconds": repr(self.build_seconds),
                "reach": "" if self.reach is None else repr(self.reach)}
        tensors = {"features": self.features.contiguous()}
        if self.positions is not None:
            tensors["positions"] = self.positions.contiguous()
        tmp = path.with_name(path.name + ".part")
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path

    @classmethod
    def from_file(cls, path: str | os.PathLike, identity: BankIdentity | None = None) -> "MemoryBank":
        """Load a bank; with `identity`, raise `StaleBank` when it was built with another model or feature."""
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                features = f.get_tensor("features")
                positions = f.get_tensor("positions") if "positions" in f.keys() else None
            if meta.get("format") != str(BANK_FORMAT):
                raise ValueError(f"format {meta.get('format')!r}, expected {BANK_FORMAT}")
            bank = cls(meta["object_name"], BankIdentity(meta["model_version"], meta["fingerprint"], meta["feature"]),
                       features, json.loads(meta["good_scores"]), int(meta["n_images"]), int(meta["top_k"]),
                       float(meta["built_at"]), float(meta["build_seconds"]), positions,
                       float(meta["reach"]) if meta.get("reach") else None)
        except (OSError, ValueError, KeyError, TypeError) as err:  # safetensors raises its own (a ValueError kin)
            raise AnomalyMapError(f"The anomaly-map bank {path} can't be read ({err}): rebuild it") from None
        except Exception as err:  # SafetensorError derives from Exception only
            raise AnomalyMapError(f"The anomaly-map bank {path} is damaged ({type(err).__name__}): rebuild it") from None
        if identity is not None:
            bank.check(identity)
        return bank


def regions(heat: np.ndarray, threshold: float, min_area: int = 4) -> tuple[Box, ...]:
    """Boxes around the connected regions of `heat` above `threshold` (8-connected), largest first."""
    import cv2

    mask = (heat > threshold).astype(np.uint8)
    n, _labels, stats, _centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= min_area:
            found.append((area, Box(float(x), float(y), float(x + w), float(y + h))))
    return tuple(box for _area, box in sorted(found, key=lambda t: -t[0]))


def _all_features(tower: VisionTower, images: Sequence[Image.Image], feature: str) -> list[CellFeatures]:
    out: list[CellFeatures] = []
    for start in range(0, len(images), _BATCH):
        out.extend(tower.features(images[start:start + _BATCH], feature))
    return out


def leave_one_out_scores(cells: Sequence[CellFeatures], top_k: int = 1, limit: int = MAX_LEAVE_ONE_OUT,
                         seed: int = 0, reach: float | None = None) -> list[float]:
    """Each good image's score against the other good images' features (at most `limit` images, a seeded sample)."""
    import torch

    if len(cells) < 2:
        raise EmptyBank(f"{len(cells)} good image(s): leave-one-out needs at least 2")
    order = list(range(len(cells)))
    if len(order) > limit:
        order = sorted(np.random.default_rng(seed).choice(len(cells), limit, replace=False).tolist())
    scores = []
    for i in order:
        others = torch.cat([c.values for j, c in enumerate(cells) if j != i])
        places = torch.cat([c.positions for j, c in enumerate(cells) if j != i])
        scores.append(image_score(nearest_distances(cells[i].values, others, query_positions=cells[i].positions,
                                                    bank_positions=places, reach=reach), top_k))
    return scores


def build_bank(tower: VisionTower, object_name: str, good_images: Sequence[Image.Image], feature: str | None = None,
               max_bank: int = DEFAULT_MAX_BANK, top_k: int = 1, seed: int = 0,
               reach: float | None = None) -> MemoryBank:
    """A memory bank of `object_name` from its good RGB images. Raises `EmptyBank` with fewer than two
    (the normalisation needs a leave-one-out score), `FeatureError` for a tower that can't give features."""
    if len(good_images) < 2:
        have = "no good images" if not good_images else "only one good image"
        raise EmptyBank(f"The anomaly map of {object_name!r} needs at least two good images (golden samples or "
                        f"images reviewed as normal); it has {have}")
    start = time.perf_counter()
    identity = BankIdentity.of(tower, feature)
    cells = _all_features(tower, good_images, identity.feature)
    return bank_from_features(object_name, identity, cells, max_bank, top_k, seed, start, reach)


def bank_from_features(object_name: str, identity: BankIdentity, cells: Sequence[CellFeatures],
                       max_bank: int = DEFAULT_MAX_BANK, top_k: int = 1, seed: int = 0,
                       started: float | None = None, reach: float | None = None) -> MemoryBank:
    """A bank from good images' features already computed with the tower `identity` names. `reach`:
    compare each cell only with good cells within that fraction of the image of its place (parts held
    in a fixture); None compares with every good cell (PatchCore)."""
    import torch

    start = time.perf_counter() if started is None else started
    good_scores = leave_one_out_scores(cells, top_k, seed=seed, reach=reach)
    features = torch.cat([c.values for c in cells])
    positions = torch.cat([c.positions for c in cells])
    if features.shape[0] > max_bank:
        keep = greedy_coreset(features, max_bank, seed)
        features, positions = features[keep].contiguous(), positions[keep].contiguous()
    return MemoryBank(object_name, identity, features, good_scores, len(cells), top_k,
                      build_seconds=time.perf_counter() - start, positions=positions, reach=reach)


def map_images(tower: VisionTower, bank: MemoryBank, images: Sequence[Image.Image],
               smoothing: float = 0.5) -> list[AnomalyMap]:
    """Maps of RGB images against `bank`; raises `StaleBank` when the tower is another model's."""
    bank.check(BankIdentity.of(tower, bank.identity.feature))
    return [bank.anomaly_map(c, smoothing) for c in _all_features(tower, images, bank.identity.feature)]


MAP_MIDPOINT = 3.0  # a normalised map score this many good-image spreads above their mean reads as P = 0.5


def map_probability(score: float) -> float:
    """A normalised map score as a probability of anomalous: a logistic centred `MAP_MIDPOINT` good-image
    spreads above the good images' mean (good images sit near 0), one spread wide."""
    return float(1.0 / (1.0 + np.exp(-(float(score) - MAP_MIDPOINT))))


def fused_score(mllm_probability: float | None, map_score: float | None) -> float | None:
    """The fusion rule: the mean of the MLLM's P(anomalous) and the map's probability; whichever exists when
    only one does; None when neither."""
    parts = [p for p in (mllm_probability, None if map_score is None else map_probability(map_score))
             if p is not None]
    return float(np.mean(parts)) if parts else None
