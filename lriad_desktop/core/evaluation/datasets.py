"""Reading labelled evaluation sets: MVTec-AD, VisA and a plain `good/` + `<defect>/` layout, and the normal
training images each category offers as golden samples for a K-shot evaluation.

Ground-truth boxes come from masks (one box per connected component); no mask, no box.
A mask of another size than its image is resized to the image (nearest neighbour) with a
note; an image whose mask can't be read is left out with a note, and the rest is read.
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.core.inspection.images import is_image_file
from lriad_desktop.core.plurals import count
from lriad_desktop.core.inspection.images import open_raster

log = logging.getLogger(__name__)

Note = Callable[[str], None]  # receives one line about a problem that doesn't stop the reading

GOOD = "good"


class DatasetError(Exception):
    """A dataset folder whose layout we don't recognise or can't read."""


class MaskError(Exception):
    """A mask file that can't be read; the message names it."""


@dataclass(frozen=True)
class LabelledImage:
    """One evaluation image with its truth."""

    path: Path
    category: str
    defect_type: str  # "good" for normal images
    boxes: tuple[Box, ...] = ()
    has_mask: bool = False

    @property
    def anomalous(self) -> bool:
        return self.defect_type != GOOD


def boxes_from_mask(mask_path: Path, min_area: int = 4, image_size: tuple[int, int] | None = None,
                    note: Note | None = None) -> tuple[Box, ...]:
    """One box per connected component of a binary mask (pixels > 0), in the pixels of its image.

    A mask of another size than `image_size` is resized to it (nearest neighbour, so it stays
    binary) and `note` is told. Raises `MaskError` when the mask can't be read.
    """
    import cv2

    try:
        with open_raster(mask_path) as im:
            mask = im.convert("L")
            if image_size is not None and mask.size != tuple(image_size):
                (note or log.warning)(f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]}, its image "
                                      f"{image_size[0]}x{image_size[1]}: resized to the image")
                mask = mask.resize(tuple(image_size), Image.Resampling.NEAREST)
            arr = np.asarray(mask) > 0
    except UnidentifiedImageError:
        raise MaskError(f"{mask_path}: mask can't be read (not an image)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MaskError(f"{mask_path}: mask can't be read ({why})") from None
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(arr.astype(np.uint8), connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= min_area:
            boxes.append(Box(float(x), float(y), float(x + w), float(y + h)))
    return tuple(sorted(boxes, key=lambda b: (b.y1, b.x1)))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)) if folder.is_dir() else []


def _image_size(path: Path) -> tuple[int, int] | None:
    """The image's size from its header, or None (an unreadable image is reported when it is loaded)."""
    try:
        with open_raster(path) as im:
            return im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _truth(image: Path, mask: Path, note: Note) -> tuple[tuple[Box, ...], bool] | None:
    """`(boxes, has_mask)` from an image's mask; None (after a note) when the mask can't be read."""
    if not mask.is_file():
        return (), False
    try:
        return boxes_from_mask(mask, image_size=_image_size(image), note=note), True
    except MaskError as err:
        note(f"{err}; skipped {image}")
        return None


def _mvtec_category(cat_dir: Path, note: Note) -> Iterator[LabelledImage]:
    test = cat_dir / "test"
    for type_dir in sorted(p for p in test.iterdir() if p.is_dir()):
        defect_type = type_dir.name
        for img in _images(type_dir):
            truth: tuple[tuple[Box, ...], bool] | None = ((), False)
            if defect_type != GOOD:
                truth = _truth(img, cat_dir / "ground_truth" / defect_type / f"{img.stem}_mask.png", note)
            if truth is not None:
                yield LabelledImage(img, cat_dir.name, defect_type, *truth)


def _visa(root: Path, note: Note) -> Iterator[LabelledImage]:
    split = next(iter(sorted((root / "split_csv").glob("*.csv"))), None)
    if split is None:
        raise DatasetError(f"{root}/split_csv has no CSV file")
    with open(split, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("split", "test") == "test"]
    annos: dict[str, dict[str, str]] = {}
    for anno in root.glob("*/image_anno.csv"):
        with open(anno, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                annos[r.get("image", "")] = r
    for r in rows:
        image = root / r["image"]
        normal = r.get("label", "normal").strip().lower() == "normal"
        defect_type = GOOD
        if not normal:
            label = (annos.get(r["image"], {}).get("label") or "anomaly").split(",")[0].strip()
            defect_type = label.replace(" ", "_") or "anomaly"
        truth: tuple[tuple[Box, ...], bool] | None = ((), False)
        if not normal and r.get("mask"):
            truth = _truth(image, root / r["mask"], note)
        if truth is not None:
            yield LabelledImage(image, r.get("object", image.parts[-4] if len(image.parts) > 3 else ""),
                                defect_type, *truth)


def detect_layout(root: Path) -> str:
    """'mvtec', 'visa' or 'plain' for a dataset folder."""
    if (root / "split_csv").is_dir():
        return "visa"
    if (root / "test").is_dir() or any((c / "test").is_dir() for c in root.iterdir() if c.is_dir()):
        return "mvtec"
    if (root / GOOD).is_dir():
        return "plain"
    raise DatasetError(
        f"{root}: not an MVTec-AD (<category>/test/...), VisA (split_csv/) or plain (good/, <defect>/) layout"
    )


def read_dataset(root: str | Path, note: Note | None = None) -> list[LabelledImage]:
    """Every test image of a dataset folder, with its truth.

    `note` gets one line per problem that doesn't stop the reading (a resized mask, an image
    left out for its unreadable mask); by default they go to the log.
    """
    root = Path(root)
    note = note or log.warning
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    layout = detect_layout(root)
    if layout == "visa":
        return list(_visa(root, note))
    if layout == "mvtec":
        cats = [root] if (root / "test").is_dir() else sorted(c for c in root.iterdir() if (c / "test").is_dir())
        return [item for cat in cats for item in _mvtec_category(cat, note)]
    items = []
    for type_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        items += [LabelledImage(img, root.name, type_dir.name) for img in _images(type_dir)]
    return items


# --- K-shot evaluation: golden samples from each category's normal training images -------------------------
def _visa_rows(root: Path) -> list[dict[str, str]]:
    split = next(iter(sorted((root / "split_csv").glob("*.csv"))), None)
    if split is None:
        raise DatasetError(f"{root}/split_csv has no CSV file")
    with open(split, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def normal_training_images(root: str | Path) -> dict[str, list[Path]]:
    """The normal images each category offers as golden samples, by category: MVTec-AD's
    `<category>/train/good`, VisA's rows with split `train` and label `normal`, a plain layout's `good/`."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "visa":
        pool: dict[str, list[Path]] = {}
        for r in _visa_rows(root):
            if r.get("split") == "train" and r.get("label", "").strip().lower() == "normal":
                image = root / r["image"]
                pool.setdefault(r.get("object", image.parts[-4] if len(image.parts) > 3 else ""), []).append(image)
        return {k: sorted(v) for k, v in pool.items()}
    if layout == "mvtec":
        cats = [root] if (root / "test").is_dir() else sorted(c for c in root.iterdir() if (c / "test").is_dir())
        return {c.name: _images(c / "train" / GOOD) for c in cats}
    return {root.name: _images(root / GOOD)}


_POOL_NAMES = {"mvtec": "<category>/train/good", "visa": "the split CSV's normal train rows", "plain": "good/"}


@dataclass(frozen=True)
class ShotProtocol:
    """Which evaluation protocol runs: 0-shot (the image alone), or K-shot with the K golden samples picked
    for each category (the same for every image of that category, from a fixed seed, as MMAD picks them)."""

    shots: int = 0
    seed: int = 0
    source: str = ""  # where the golden samples come from, in words
    references: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the evaluation table."""
        if self.shots <= 0:
            return "protocol: 0-shot (each image alone, no golden sample)"
        return (f"protocol: {self.shots}-shot ({self.shots} normal training image{'s' if self.shots > 1 else ''} "
                f"per category beside each image, from {self.source}, seed {self.seed})")

    def as_dict(self) -> dict:
        return {"shots": self.shots, "seed": self.seed, "source": self.source,
                "references": {k: [str(p) for p in v] for k, v in self.references.items()}}

    def remaining(self, items: list[LabelledImage]) -> list[LabelledImage]:
        """The items left to test: a golden sample is never also inspected (a plain layout's `good/` holds both)."""
        chosen = {p for refs in self.references.values() for p in refs}
        return [i for i in items if i.path not in chosen]


def pick_references(root: str | Path, shots: int, categories: set[str] | list[str], seed: int = 0) -> ShotProtocol:
    """K golden samples per category from its normal training images, drawn with a fixed seed (per category, so
    adding a category changes no other's). Raises `DatasetError` when a category has fewer than K."""
    if shots <= 0:
        return ShotProtocol()
    root = Path(root)
    layout = detect_layout(root)
    pool = normal_training_images(root)
    chosen: dict[str, tuple[Path, ...]] = {}
    for cat in sorted(categories):
        images = pool.get(cat, [])
        if len(images) < shots:
            raise DatasetError(f"{cat}: {count(len(images), 'normal training image')} where --shots {shots} needs "
                               f"{shots} (expected in {_POOL_NAMES[layout]})")
        chosen[cat] = tuple(random.Random(f"{seed}:{cat}").sample(images, shots))
    return ShotProtocol(shots, seed, f"{_POOL_NAMES[layout]}", chosen)
