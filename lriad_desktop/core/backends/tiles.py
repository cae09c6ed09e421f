"""Large images inspected in overlapping tiles at the model's pixel budget, the defects merged back.

A Qwen-VL model sees an image resized to its pixel budget: a 1 mm scratch on a 5000 x 4000 photo shrinks to
less than a pixel. Cut into overlapping tiles, each tile reaches the model at (or near) full resolution.
`TiledBackend` wraps any `InspectionBackend` (the local model, a model server): an image whose object calls
for tiles (`TilePolicy`) is cut (`plan_tiles`), the tiles are inspected as images of their own, and their
defects are mapped back to original-image pixels and merged where two tiles saw the same defect
(`merge_defects`). The finding says it was tiled and how (`Finding.tiling`).

A policy is written as text, the same in the settings and on the command line: a default and per-object
choices, e.g. `auto`, `4x3`, `off, pcb board=auto, washer=3x2`. `auto` cuts the fewest tiles that each fit
the model's pixel budget unresized, at most `AUTO_MAX_SIDE` a side (then each tile is resized a little);
an image that fits the budget whole is not tiled. `CxR` is C columns by R rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Tiling, Verdict
from lriad_desktop.core.backends.pipeline import Answer, ImageError, InspectionBackend

OVERLAP = 0.2  # of a tile's side: a defect up to a fifth of a tile is whole in at least one tile
AUTO_MAX_SIDE = 8  # auto cuts at most 8 x 8 tiles
MAX_SIDE = 16  # the most columns or rows a grid may ask for
MAX_TILE_ASPECT = 2.0  # auto keeps tiles no longer than twice their width
_SAME_DEFECT_IOMIN = 0.5  # two tiles' boxes, one mostly inside the other: one defect seen twice
_EDGE_TOLERANCE = 0.03  # of a tile's side: a box this close to an inner tile edge runs on past it


@dataclass(frozen=True)
class TileSpec:
    """How to cut one image: `auto` (columns = rows = 0: from the model's pixel budget) or C x R tiles."""

    columns: int = 0
    rows: int = 0

    @property
    def auto(self) -> bool:
        return self.columns == 0

    def __str__(self) -> str:
        return "auto" if self.auto else f"{self.columns}x{self.rows}"


def parse_tile_spec(text: str) -> TileSpec | None:
    """`auto`, `CxR` (e.g. `4x3`) or `off` (None); raises ValueError with a readable reason."""
    value = text.strip().lower().replace("×", "x")
    if value in ("off", "none", "no", ""):
        return None
    if value == "auto":
        return TileSpec()
    cols, sep, rows = value.partition("x")
    if not sep or not cols.strip().isdigit() or not rows.strip().isdigit():
        raise ValueError(f"'{text.strip()}' is not a tile grid: use auto, off or CxR such as 4x3")
    c, r = int(cols), int(rows)
    if not (1 <= c <= MAX_SIDE and 1 <= r <= MAX_SIDE) or c * r < 2:
        raise ValueError(f"'{text.strip()}': a grid has 1 to {MAX_SIDE} columns and rows, and at least 2 tiles")
    return TileSpec(c, r)


@dataclass(frozen=True)
class TilePolicy:
    """Which images are tiled: a default spec and per-object specs (object names match case-insensitively)."""

    default: TileSpec | None = None
    per_object: tuple[tuple[str, TileSpec | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "TilePolicy":
        """`auto`, `4x3`, `off, pcb board=auto, washer=3x2` …; raises ValueError naming the bad item."""
        default: TileSpec | None = None
        per_object: dict[str, TileSpec | None] = {}
        for item in (part.strip() for part in text.replace(";", ",").split(",")):
            if not item:
                continue
            name, sep, spec = item.rpartition("=")
            if sep:
                if not name.strip():
                    raise ValueError(f"'{item}': name the object before '='")
                per_object[name.strip().lower()] = parse_tile_spec(spec)
            else:
                default = parse_tile_spec(spec)
        return cls(default, tuple(per_object.items()))

    def for_object(self, object_name: str | None) -> TileSpec | None:
        """The spec for images of this object (the default when the object has no spec of its own)."""
        key = (object_name or "").strip().lower()
        for name, spec in self.per_object:
            if name == key:
                return spec
        return self.default

    @property
    def enabled(self) -> bool:
        """True when any image could be tiled."""
        return self.default is not None or any(spec is not None for _, spec in self.per_object)

    def __str__(self) -> str:
        items = [str(self.default) if self.default else "off"]
        items += [f"{name}={spec or 'off'}" for name, spec in self.per_object]
        return ", ".join(items)


def tile_policy_problem(text: str) -> str:
    """Why `text` is not a tile policy ("" when it is one), for the settings' check."""
    try:
        TilePolicy.parse(text)
    except ValueError as err:
        return str(err)
    return ""


@dataclass(frozen=True)
class Tile:
    """One tile: its place in the grid and its box `(x1, y1, x2, y2)` in original-image pixels."""

    column: int
    row: int
    box: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        return f"tile {self.column + 1},{self.row + 1}"


@dataclass(frozen=True)
class TilePlan:
    """How one image is cut: the grid, the tiles (row by row) and the image they cover."""

    spec: TileSpec
    columns: int
    rows: int
    tile_size: tuple[int, int]
    image_size: tuple[int, int]
    tiles: tuple[Tile, ...]
    overlap: float = OVERLAP


def _tile_length(length: int, n: int, overlap: float) -> int:
    return length if n == 1 else min(length, math.ceil(length / (n - (n - 1) * overlap)))


def _starts(length: int, n: int, tile: int) -> list[int]:
    if n == 1:
        return [0]
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _auto_grid(width: int, height: int, budget: int, overlap: float) -> tuple[int, int] | None:
    """The fewest tiles that each fit `budget` unresized (else the smallest tiles auto allows)."""
    best_fit: tuple[int, float, int, int] | None = None
    best_small: tuple[int, float, int, int] | None = None
    for cols in range(1, AUTO_MAX_SIDE + 1):
        for rows in range(1, AUTO_MAX_SIDE + 1):
            if cols * rows < 2:
                continue
            tw, th = _tile_length(width, cols, overlap), _tile_length(height, rows, overlap)
            aspect = max(tw / th, th / tw)
            if aspect > MAX_TILE_ASPECT:
                continue
            if tw * th <= budget:
                key = (cols * rows, aspect, cols, rows)
                best_fit = key if best_fit is None or key < best_fit else best_fit
            key = (tw * th, aspect, cols, rows)
            best_small = key if best_small is None or key < best_small else best_small
    chosen = best_fit or best_small
    return (chosen[2], chosen[3]) if chosen else None


def plan_tiles(image_size: tuple[int, int], geometry: ModelGeometry, spec: TileSpec,
               overlap: float = OVERLAP) -> TilePlan | None:
    """The tiles to cut an image of `(width, height)` into for a model of `geometry`, or None when the image
    is inspected whole (auto: it fits the pixel budget; a grid too fine for the image is made coarser)."""
    width, height = image_size
    if spec.auto:
        if width * height <= geometry.max_pixels:
            return None
        grid = _auto_grid(width, height, geometry.max_pixels, overlap)
        if grid is None:
            return None
        cols, rows = grid
    else:
        cols, rows = spec.columns, spec.rows
    smallest = 2 * geometry.factor  # a tile keeps at least two image tokens a side
    cols = max(1, min(cols, int((width - smallest * overlap) // (smallest * (1 - overlap)))))
    rows = max(1, min(rows, int((height - smallest * overlap) // (smallest * (1 - overlap)))))
    if cols * rows < 2:
        return None
    tw, th = _tile_length(width, cols, overlap), _tile_length(height, rows, overlap)
    tiles = tuple(Tile(c, r, (x, y, x + tw, y + th))
                  for r, y in enumerate(_starts(height, rows, th)) for c, x in enumerate(_starts(width, cols, tw)))
    return TilePlan(spec, cols, rows, (tw, th), (width, height), tiles, overlap)


# --- merging ------------------------------------------------------------------------------------------------
def _cut_sides(box: Box, tile: Tile, image_size: tuple[int, int]) -> set[str]:
    """The inner tile edges a box reaches: there the defect may go on in the neighbouring tile."""
    x1, y1, x2, y2 = tile.box
    tol_x, tol_y = max(2.0, (x2 - x1) * _EDGE_TOLERANCE), max(2.0, (y2 - y1) * _EDGE_TOLERANCE)
    sides = set()
    if x1 > 0 and box.x1 <= x1 + tol_x:
        sides.add("left")
    if x2 < image_size[0] and box.x2 >= x2 - tol_x:
        sides.add("right")
    if y1 > 0 and box.y1 <= y1 + tol_y:
        sides.add("top")
    if y2 < image_size[1] and box.y2 >= y2 - tol_y:
        sides.add("bottom")
    return sides


def _faces(sides: set[str], tile: Tile, other: Tile) -> bool:
    return (("left" in sides and other.column < tile.column) or ("right" in sides and other.column > tile.column)
            or ("top" in sides and other.row < tile.row) or ("bottom" in sides and other.row > tile.row))


def _grown(box: Box, by: float) -> Box:
    return Box(box.x1 - by, box.y1 - by, box.x2 + by, box.y2 + by)


def _intersection(a: Box, b: Box) -> float:
    return max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1)) * max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))


def _same_defect(a: tuple[Tile, Box], b: tuple[Tile, Box], image_size: tuple[int, int]) -> bool:
    (ta, ba), (tb, bb) = a, b
    inter = _intersection(ba, bb)
    smaller = min(ba.area, bb.area)
    if smaller > 0 and inter / smaller >= _SAME_DEFECT_IOMIN:
        return True  # one tile saw it whole, the other (in the overlap) too, or a part of it
    gap = max(2.0, min(ta.box[2] - ta.box[0], ta.box[3] - ta.box[1]) * _EDGE_TOLERANCE)
    if _intersection(_grown(ba, gap), bb) <= 0:
        return False
    # touching boxes: one defect across a seam when either box runs into the other's tile
    return _faces(_cut_sides(ba, ta, image_size), ta, tb) or _faces(_cut_sides(bb, tb, image_size), tb, ta)


def merge_defects(pieces: Sequence[tuple[Tile, Defect]], image_size: tuple[int, int]) -> tuple[Defect, ...]:
    """Defects found in tiles (boxes already in original-image pixels) as the defects of the image.

    Boxes of the same label from different tiles are one defect when one lies mostly inside the other (the
    overlap showed it to both tiles) or when they touch and one runs into the other's tile (a defect across
    a seam); the defect's box is then the union. A defect without a box is kept once per label, unless a
    boxed defect of that label was found.
    """
    boxed = [(tile, d.box, d.label) for tile, d in pieces if d.box is not None]
    parent = list(range(len(boxed)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxed)):
        for j in range(i + 1, len(boxed)):
            ti, bi, li = boxed[i]
            tj, bj, lj = boxed[j]
            if li == lj and ti != tj and _same_defect((ti, bi), (tj, bj), image_size):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxed)):
        groups.setdefault(root(i), []).append(i)
    merged = []
    for members in groups.values():
        boxes = [boxed[i][1] for i in members]
        union = Box(min(b.x1 for b in boxes), min(b.y1 for b in boxes), max(b.x2 for b in boxes),
                    max(b.y2 for b in boxes))
        merged.append(Defect(boxed[members[0]][2], union))
    labels_with_box = {d.label for d in merged}
    for _tile, d in pieces:
        if d.box is None and d.label not in labels_with_box:
            merged.append(d)
            labels_with_box.add(d.label)
    return tuple(merged)


def _shifted(defect: Defect, tile: Tile) -> Defect:
    if defect.box is None:
        return defect
    x, y = tile.box[0], tile.box[1]
    b = defect.box
    return Defect(defect.label, Box(b.x1 + x, b.y1 + y, b.x2 + x, b.y2 + y))


def merge_tile_findings(plan: TilePlan, findings: Sequence[Finding], image_path: str = "",
                        object_name: str = "", model_version: str = "") -> Finding:
    """One finding for the whole image from its tiles' findings (in `plan.tiles` order).

    Defective when any tile is; else unparsed when any tile's answer couldn't be read; else normal. The
    reasoning names the grid, then gives the steps of each defective tile; timings are summed over tiles.
    """
    anomalous = [(t, f) for t, f in zip(plan.tiles, findings) if f.verdict is Verdict.ANOMALOUS]
    unparsed = [(t, f) for t, f in zip(plan.tiles, findings) if f.verdict is Verdict.UNPARSED]
    verdict = Verdict.ANOMALOUS if anomalous else Verdict.UNPARSED if unparsed else Verdict.NORMAL
    defects = merge_defects([(t, _shifted(d, t)) for t, f in anomalous for d in f.defects], plan.image_size)
    tw, th = plan.tile_size
    summary = (f"Inspected in {plan.columns} x {plan.rows} overlapping tiles of {tw} x {th} px "
               f"({plan.spec}); {len(anomalous)} of {len(plan.tiles)} tiles show a defect"
               + (f", {len(unparsed)} could not be read." if unparsed else "."))
    reasoning = [summary] + [f"{t.name.capitalize()}: {step}" for t, f in anomalous for step in f.reasoning]
    raw = "\n\n".join(f"[{t.name}] {f.raw_text}" for t, f in anomalous + unparsed)
    timings: dict[str, float] = {}
    for f in findings:
        for key, value in f.timings.items():
            if key != "batch_size":
                timings[key] = timings.get(key, 0.0) + value
    timings["tiles"] = float(len(plan.tiles))
    tiling = Tiling(str(plan.spec), plan.columns, plan.rows, plan.tile_size, plan.overlap, len(anomalous),
                    len(unparsed))
    parse_error = unparsed[0][1].parse_error if verdict is Verdict.UNPARSED else ""
    finding = Finding(verdict, defects, tuple(reasoning), raw, model_version=model_version, image_path=image_path,
                      image_size=plan.image_size, object_name=object_name, timings=timings,
                      parse_error=parse_error, tiling=tiling)
    return _with_highest_score(finding, findings)


def _with_highest_score(finding: Finding, tiles: Sequence[Finding]) -> Finding:
    """The image's anomaly score is its most anomalous tile's, where the backend scores findings."""
    scores = [s for s in (getattr(f, "anomaly_score", None) for f in tiles) if s is not None]
    if not scores or not hasattr(finding, "anomaly_score"):
        return finding
    return replace(finding, anomaly_score=max(scores))


# --- the backend ---------------------------------------------------------------------------------------------
class TiledBackend:
    """An `InspectionBackend` that inspects the images its policy names in tiles, through `inner`.

    Tiles go to `inner` `tile_batch` at a time; a tile the inner backend can't inspect fails its image (a
    finding from some tiles could miss the defect). Everything else is `inner`'s: model version, geometry,
    device, loading.
    """

    def __init__(self, inner: InspectionBackend, policy: TilePolicy, tile_batch: int = 8) -> None:
        self.inner = inner
        self.policy = policy
        self.tile_batch = max(1, tile_batch, inner.min_batch)

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    @property
    def geometry(self) -> ModelGeometry:
        return self.inner.geometry

    @property
    def device(self) -> str | None:
        return self.inner.device

    @property
    def load_seconds(self) -> float | None:
        return self.inner.load_seconds

    @property
    def min_batch(self) -> int:
        return self.inner.min_batch

    def load(self) -> "TiledBackend":
        """Load the inner backend."""
        self.inner.load()
        return self

    def close(self) -> None:
        """Close the inner backend."""
        self.inner.close()

    def plan(self, image_size: tuple[int, int], object_name: str | None) -> TilePlan | None:
        """The tiles an image of this object and size is cut into (None: inspected whole)."""
        spec = self.policy.for_object(object_name)
        return plan_tiles(image_size, self.geometry, spec) if spec is not None else None

    def inspect_batch(self, images: Sequence[Image.Image], object_names: Sequence[str | None] | None = None,
                      image_paths: Sequence[str] | None = None, hints: Sequence[str] | None = None) -> list[Answer]:
        """One answer per image: whole images in one call to `inner`, tiled ones tile batch by tile batch (a
        whole image keeps its region hint; a tile gets none: the hint names a place in the whole image)."""
        n = len(images)
        names = list(object_names) if object_names is not None else [None] * n
        paths = list(image_paths) if image_paths is not None else [""] * n
        plans = [self.plan(im.size, name) for im, name in zip(images, names)]
        answers: list[Any] = [None] * n
        whole = [i for i in range(n) if plans[i] is None]
        if whole:
            extra = {"hints": [hints[i] for i in whole]} if hints is not None and any(hints[i] for i in whole) else {}
            got = self.inner.inspect_batch([images[i] for i in whole], [names[i] for i in whole],
                                           [paths[i] for i in whole], **extra)
            for i, answer in zip(whole, got):
                answers[i] = answer
        for i, plan in enumerate(plans):
            if plan is not None:
                answers[i] = self._inspect_tiled(images[i], plan, names[i], paths[i])
        return answers

    def _inspect_tiled(self, image: Image.Image, plan: TilePlan, name: str | None, path: str) -> Answer:
        findings: list[Finding] = []
        for start in range(0, len(plan.tiles), self.tile_batch):
            tiles = plan.tiles[start:start + self.tile_batch]
            got = self.inner.inspect_batch([image.crop(t.box) for t in tiles], [name] * len(tiles),
                                           [path] * len(tiles))
            for tile, answer in zip(tiles, got):
                if isinstance(answer, ImageError):
                    return ImageError(f"{tile.name} of {len(plan.tiles)}: {answer.message}")
                findings.append(answer)
        return merge_tile_findings(plan, findings, path, name or "", self.model_version)
