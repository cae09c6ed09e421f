"""The anomaly map: how far each part of an image is from everything seen on the object's good images.

A memory bank per object holds the features of its good images (golden samples, accepted-normal images),
from the feature source the bank names (`core.anomaly_map.features`: the shipped ImageNet CNN by default, or the
model's own vision tower); a large bank is thinned with PatchCore's greedy
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

from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.core.anomaly_map.coreset import Coreset, coreset, greedy_coreset  # noqa: F401 (re-exported)
from lriad_desktop.core.anomaly_map.place_spread import PlaceSpread, as_grid, leave_one_out_relative
from lriad_desktop.core.anomaly_map.registration import Registration, unwarp
from lriad_desktop.core.anomaly_map.fusion import (DEFAULT_FUSION, MAP_MIDPOINT, FusionRule, fit_fusion,  # noqa: F401 (re-exported)
                                           fused_score, map_probability)
from lriad_desktop.core.backends.vision_features import CellFeatures, FeatureSource

DEFAULT_MAX_BANK = 16_384  # features kept after the coreset (PatchCore keeps 1-10 % of a large bank)
DEFAULT_TOP_K = 3  # image score: mean of the 3 hottest cells (line-like sets, worst kind: 0.964-0.973; the max 0.946)
MAX_LEAVE_ONE_OUT = 64  # good images scored leave-one-out for the normalisation (a seeded sample beyond)
BANK_FORMAT = 3  # 3: cells read against their place (`place_spread`) where the source says so (older banks rebuilt)
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
    fingerprint: str  # `vision_features.model_fingerprint` of the model folder (+ adapter), or the CNN's weights
    feature: str  # a tower's `"block:0+1@448"` (`vision_features.parse_feature`) or `"cnn:efficientnet_lite0@320"`

    @classmethod
    def of(cls, tower: FeatureSource, feature: str | None = None) -> "BankIdentity":
        """The identity a bank built now with `tower` (a model's vision tower or the shipped CNN; `feature`,
        else its default) would have."""
        return cls(tower.model_version, tower.fingerprint, feature or tower.default_feature)


@dataclass(frozen=True)
class AnomalyMap:
    """One image's map and what it says."""

    heat: np.ndarray  # (height, width) float32 in original-image pixels, in normalised units (see `score`)
    cells: np.ndarray  # (rows, cols) float32 each cell's nearest-neighbour distance (read against its place, when
    # the bank has `places`), before normalisation
    raw_score: float  # the image score before normalisation
    score: float  # (raw - good mean) / good spread: ~0 on good images, larger is more anomalous
    boxes: tuple[Box, ...]  # regions above the highest good-image score, original-image pixels
    image_size: tuple[int, int]
    warp: Any = None  # the 2 x 3 alignment onto the bank's reference (`map_align`); `cells` lie in that frame

    @property
    def hottest_cell(self) -> tuple[int, int]:
        """(row, col) of the cell farthest from the bank."""
        r, c = np.unravel_index(int(np.argmax(self.cells)), self.cells.shape)
        return int(r), int(c)


def image_score(distances: Any, top_k: int = DEFAULT_TOP_K) -> float:
    """The image score from its cells' distances: the mean of the `top_k` largest (1: the maximum)."""
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


class MemoryBank:
    """The good images' features of one object, with the leave-one-out scores that normalise its maps."""

    def __init__(self, object_name: str, identity: BankIdentity, features: Any, good_scores: Sequence[float],
                 n_images: int, top_k: int = DEFAULT_TOP_K, built_at: float | None = None, build_seconds: float = 0.0,
                 positions: Any = None, reach: float | None = None,
                 registration: Registration | None = None, places: PlaceSpread | None = None) -> None:
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
        self.registration = registration  # images are aligned onto its reference before their features; None: not
        self.places = places  # each cell read against its place on good parts (`place_spread`); None: plain distances
        self.coreset_radius = 0.0  # every good row dropped by the coreset lies this near a kept one (0: none dropped)
        self.build_timings: dict[str, float] = {}  # `BankBuilder.timings` of the build, when built here

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

    def check_cells(self, cells: CellFeatures) -> None:
        """Raise `StaleBank` when an image's cells are not the bank's kind (another width, as in a bank file of
        this model's name holding other features): one clear sentence instead of a shape error in the search."""
        wide = int(cells.values.shape[-1]) if cells.values.dim() == 2 else -1
        bank_wide = int(self.features.shape[-1])
        if self.features.dim() != 2 or wide != bank_wide:
            theirs = f"are {wide} wide" if wide >= 0 else f"have the shape {tuple(cells.values.shape)}"
            raise StaleBank(f"The anomaly-map bank of {self.object_name!r} holds features {bank_wide} wide, and "
                            f"{self.identity.model_version}'s {self.identity.feature} features {theirs}: "
                            "rebuild it from the good images")

    def cell_distances(self, cells: CellFeatures) -> Any:
        """(rows, cols) nearest-bank distances of one image's cells."""
        self.check_cells(cells)
        return nearest_distances(cells.values, self.features, query_positions=cells.positions,
                                 bank_positions=self.positions, reach=self.reach).reshape(cells.rows, cells.cols)

    def anomaly_map(self, cells: CellFeatures, smoothing: float = 0.5, warp: Any = None) -> AnomalyMap:
        """The map of one image: cell distances upsampled to the model input, smoothed (Gaussian, sigma
        `smoothing` cells), resized to the original image (and warped back from the aligned frame by `warp`,
        `Registration.align`'s matrix); score and boxes from it."""
        import cv2

        import torch

        grid = as_grid(self.cell_distances(cells), cells.rows, cells.cols)
        if self.places is not None:
            grid = self.places.relative(grid)
        raw = image_score(torch.from_numpy(grid), self.top_k)
        in_w, in_h = cells.input_size
        up = cv2.resize(grid, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        sigma = smoothing * in_w / cells.cols
        if sigma > 0:
            up = cv2.GaussianBlur(up, (0, 0), sigmaX=sigma, sigmaY=sigma)
        w, h = cells.image_size
        heat = unwarp(cv2.resize(up, (w, h), interpolation=cv2.INTER_LINEAR), warp)
        boxes = regions(heat, self.box_threshold)
        return AnomalyMap(np.asarray(self.normalise(heat), np.float32), grid, raw, float(self.normalise(raw)),
                          boxes, (w, h), warp)

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
        if self.registration is not None:
            import torch

            tensors["reference"] = torch.from_numpy(np.ascontiguousarray(self.registration.reference, np.float32))
        if self.positions is not None:
            tensors["positions"] = self.positions.contiguous()
        if self.places is not None:
            import torch

            tensors["place_mean"] = torch.from_numpy(np.ascontiguousarray(self.places.mean))
            tensors["place_spread"] = torch.from_numpy(np.ascontiguousarray(self.places.spread))
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
                reference = f.get_tensor("reference").numpy() if "reference" in f.keys() else None
                places = (PlaceSpread(f.get_tensor("place_mean").numpy(), f.get_tensor("place_spread").numpy())
                          if "place_mean" in f.keys() and "place_spread" in f.keys() else None)
            if meta.get("format") != str(BANK_FORMAT):
                raise ValueError(f"format {meta.get('format')!r}, expected {BANK_FORMAT}")
            if features.ndim != 2 or not features.is_floating_point() or features.shape[0] == 0 or (
                    positions is not None and tuple(positions.shape) != (features.shape[0], 2)) or (
                    places is not None and not places.sound()):
                raise ValueError(f"features of shape {tuple(features.shape)}"
                                 f"{'' if positions is None else f', positions of shape {tuple(positions.shape)}'}"
                                 f"{'' if places is None or places.sound() else ', unsound place figures'}")
            bank = cls(meta["object_name"], BankIdentity(meta["model_version"], meta["fingerprint"], meta["feature"]),
                       features, json.loads(meta["good_scores"]), int(meta["n_images"]), int(meta["top_k"]),
                       float(meta["built_at"]), float(meta["build_seconds"]), positions,
                       float(meta["reach"]) if meta.get("reach") else None,
                       None if reference is None else Registration(reference), places)
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


def _all_features(tower: FeatureSource, images: Sequence[Image.Image], feature: str) -> list[CellFeatures]:
    out: list[CellFeatures] = []
    for start in range(0, len(images), _BATCH):
        out.extend(tower.features(images[start:start + _BATCH], feature))
    return out


def leave_one_out_scores(cells: Sequence[CellFeatures], top_k: int = DEFAULT_TOP_K, limit: int = MAX_LEAVE_ONE_OUT,
                         seed: int = 0, reach: float | None = None) -> list[float]:
    """Each good image's score against the other good images' features (at most `limit` images, a seeded sample)."""
    import torch

    if len(cells) < 2:
        raise EmptyBank(f"{len(cells)} good image(s): leave-one-out needs at least 2")
    rows = torch.cat([c.values for c in cells])
    places = torch.cat([c.positions for c in cells])
    owner = torch.cat([torch.full((c.values.shape[0],), j, dtype=torch.long) for j, c in enumerate(cells)])
    return _leave_one_out(dict(enumerate(cells)), _loo_order(len(cells), limit, seed), rows, places, owner,
                          top_k, reach)


def _loo_order(n: int, limit: int, seed: int) -> list[int]:
    if n <= limit:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, limit, replace=False).tolist())


def _leave_one_out(kept: dict[int, CellFeatures], order: Sequence[int], rows: Any, places: Any, owner: Any,
                   top_k: int, reach: float | None) -> list[float]:
    """Scores of the images `order` names against the bank rows (`rows`, `places`) of the other images (`owner`)."""
    return [image_score(d, top_k) for d in _leave_one_out_distances(kept, order, rows, places, owner, reach)]


def _leave_one_out_distances(kept: dict[int, CellFeatures], order: Sequence[int], rows: Any, places: Any, owner: Any,
                             reach: float | None) -> list[Any]:
    out = []
    for i in order:
        others = owner != i
        out.append(nearest_distances(kept[i].values, rows[others], query_positions=kept[i].positions,
                                     bank_positions=places[others], reach=reach))
    return out


CANDIDATES_PER_KEPT = 4  # a large bank's rows are first sampled down to this many times `max_bank`, per image


class BankBuilder:
    """A bank built image by image, holding little more than the bank itself: each image's rows are sampled
    down to its share of `CANDIDATES_PER_KEPT` x `max_bank` candidates (seeded), the greedy coreset picks
    `max_bank` of those, and the good images' leave-one-out scores are taken against the final bank less
    their own rows (what a new image will meet). Only the images picked for leave-one-out are kept whole."""

    def __init__(self, object_name: str, identity: BankIdentity, n_images: int, max_bank: int = DEFAULT_MAX_BANK,
                 top_k: int = DEFAULT_TOP_K, seed: int = 0, reach: float | None = None, started: float | None = None,
                 registration: Registration | None = None, by_place: bool = False) -> None:
        self.object_name, self.identity, self.n_images = object_name, identity, n_images
        self.by_place = by_place  # read cells against their place (`place_spread`) when enough good images
        self.registration = registration  # the good images given to `add` were aligned onto it
        self.max_bank, self.top_k, self.seed, self.reach = max_bank, top_k, seed, reach
        self.started = time.perf_counter() if started is None else started
        self.per_image = max(1, math.ceil(CANDIDATES_PER_KEPT * max_bank / max(n_images, 1)))
        self.order = _loo_order(n_images, MAX_LEAVE_ONE_OUT, seed)
        self._loo = set(self.order)
        self.kept: dict[int, CellFeatures] = {}
        self._values: list[Any] = []
        self._places: list[Any] = []
        self._owner: list[Any] = []
        self.added = 0
        self.timings: dict[str, float] = {}  # after `finish`: coreset_s, leave_one_out_s, candidates
        self.loo_distances: list[Any] = []  # after `finish`: each leave-one-out image's cell distances

    def add(self, cells: Sequence[CellFeatures]) -> None:
        """The next good images' features, in order."""
        import torch

        for c in cells:
            i = self.added
            self.added += 1
            if i in self._loo:
                self.kept[i] = c
            values, places = c.values, c.positions
            if values.shape[0] > self.per_image:
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
                pick = torch.randperm(values.shape[0], generator=gen)[:self.per_image]
                values, places = values[pick], places[pick]
            self._values.append(values)
            self._places.append(places)
            self._owner.append(torch.full((values.shape[0],), i, dtype=torch.long))

    def finish(self) -> MemoryBank:
        """The bank; raises `EmptyBank` with fewer than two images added."""
        import torch

        if self.added < 2:
            raise EmptyBank(f"{self.added} good image(s): leave-one-out needs at least 2")
        features, positions, owner = torch.cat(self._values), torch.cat(self._places), torch.cat(self._owner)
        self._values, self._places, self._owner = [], [], []
        radius, candidates = 0.0, int(features.shape[0])
        t0 = time.perf_counter()
        if features.shape[0] > self.max_bank:
            chosen = coreset(features, self.max_bank, self.seed)
            keep, radius = chosen.indices, chosen.radius
            features, positions, owner = features[keep].contiguous(), positions[keep].contiguous(), owner[keep]
        t1 = time.perf_counter()
        order = [i for i in self.order if i < self.added]
        self.loo_distances = _leave_one_out_distances(self.kept, order, features, positions, owner, self.reach)
        grids = [as_grid(d, self.kept[i].rows, self.kept[i].cols) for d, i in zip(self.loo_distances, order)]
        places = PlaceSpread.of(grids) if self.by_place else None
        if places is not None:
            grids = leave_one_out_relative(grids)
        good_scores = [image_score(torch.from_numpy(g), self.top_k) for g in grids]
        self.timings = {"coreset_s": t1 - t0, "leave_one_out_s": time.perf_counter() - t1, "candidates": candidates}
        bank = MemoryBank(self.object_name, self.identity, features, good_scores, self.added, self.top_k,
                          build_seconds=time.perf_counter() - self.started, positions=positions, reach=self.reach,
                          registration=self.registration, places=places)
        bank.coreset_radius = radius
        bank.build_timings = dict(self.timings)
        return bank


def bank_scheme(tower: FeatureSource) -> tuple[int, int]:
    """(max_bank, top_k) a bank on `tower`'s features is built with: the source's own (`map_max_bank`,
    `map_top_k`, measured for it: the shipped CNN's in `core.anomaly_map.cnn_features`), else the tower's defaults."""
    return int(getattr(tower, "map_max_bank", DEFAULT_MAX_BANK)), int(getattr(tower, "map_top_k", DEFAULT_TOP_K))


def reads_places(tower: FeatureSource) -> bool:
    """Whether banks on `tower`'s features read each cell against its place (`place_spread`; the shipped CNN)."""
    return bool(getattr(tower, "map_by_place", False))


def aligns(tower: FeatureSource) -> bool:
    """Whether banks on `tower`'s features register images onto the first good one (a tower: yes; the CNN: no)."""
    return bool(getattr(tower, "map_align", True))


def build_bank(tower: FeatureSource, object_name: str, good_images: Sequence[Image.Image], feature: str | None = None,
               max_bank: int | None = None, top_k: int | None = None, seed: int = 0,
               reach: float | None = None, align: bool | None = None) -> MemoryBank:
    """A memory bank of `object_name` from its good RGB images. Raises `EmptyBank` with fewer than two
    (the normalisation needs a leave-one-out score), `FeatureError` for a tower that can't give features.
    `align`: register every image onto the first good one first (`core.anomaly_map.registration`; a part in a fixture);
    None: as the source does (`aligns`)."""
    if len(good_images) < 2:
        have = "no good images" if not good_images else "only one good image"
        raise EmptyBank(f"The anomaly map of {object_name!r} needs at least two good images (golden samples or "
                        f"images reviewed as normal); it has {have}")
    start = time.perf_counter()
    identity = BankIdentity.of(tower, feature)
    scheme = bank_scheme(tower)
    max_bank = scheme[0] if max_bank is None else max_bank
    top_k = scheme[1] if top_k is None else top_k
    registration = Registration.from_image(good_images[0]) if (aligns(tower) if align is None else align) else None
    builder = BankBuilder(object_name, identity, len(good_images), max_bank, top_k, seed, reach, start, registration,
                          reads_places(tower))
    for at in range(0, len(good_images), _BATCH):
        batch = good_images[at:at + _BATCH]
        if registration is not None:
            batch = [registration.align(im)[0] for im in batch]
        builder.add(tower.features(batch, identity.feature))
    return builder.finish()


def bank_from_features(object_name: str, identity: BankIdentity, cells: Sequence[CellFeatures],
                       max_bank: int = DEFAULT_MAX_BANK, top_k: int = DEFAULT_TOP_K, seed: int = 0,
                       started: float | None = None, reach: float | None = None,
                       registration: Registration | None = None, by_place: bool = False) -> MemoryBank:
    """A bank from good images' features already computed with the tower `identity` names. `reach`:
    compare each cell only with good cells within that fraction of the image of its place (parts held
    in a fixture); None compares with every good cell (PatchCore). `registration`: the cells are of good images
    aligned onto it (`Registration.align`), and queries will be too. `by_place`: `place_spread`. (`BankBuilder` for a
    large bank.)"""
    builder = BankBuilder(object_name, identity, len(cells), max_bank, top_k, seed, reach, started, registration,
                          by_place)
    builder.add(cells)
    return builder.finish()


def map_images(tower: FeatureSource, bank: MemoryBank, images: Sequence[Image.Image],
               smoothing: float = 0.5) -> list[AnomalyMap]:
    """Maps of RGB images against `bank`; raises `StaleBank` when the tower is another model's."""
    bank.check(BankIdentity.of(tower, bank.identity.feature))
    warps: list[Any] = [None] * len(images)
    if bank.registration is not None:
        pairs = [bank.registration.align(im) for im in images]
        images, warps = [a for a, _ in pairs], [w for _, w in pairs]
    cells = _all_features(tower, images, bank.identity.feature)
    return [bank.anomaly_map(c, smoothing, w) for c, w in zip(cells, warps)]


def pixel_auroc(heats: Sequence[np.ndarray], masks: Sequence[np.ndarray], side: int = 128) -> float | None:
    """Pixel AUROC (the field's localisation figure): the chance a defect pixel's heat is above a normal pixel's,
    pooled over images (each heat map and its mask, same shape, resized to at most `side` px; ties count half).
    None when the pixels are all of one kind."""
    import cv2

    values, truth = [], []
    for heat, mask in zip(heats, masks):
        h, w = heat.shape
        scale = min(1.0, side / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        values.append(cv2.resize(np.asarray(heat, np.float32), size, interpolation=cv2.INTER_AREA).ravel())
        truth.append(cv2.resize((np.asarray(mask) > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).ravel())
    if not values:
        return None
    v, t = np.concatenate(values), np.concatenate(truth).astype(bool)
    pos = int(t.sum())
    neg = len(t) - pos
    if not pos or not neg:
        return None
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average 1-based rank of each value
    return float((ranks[t].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
