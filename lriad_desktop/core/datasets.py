"""Reading labelled evaluation sets: MVTec-AD, VisA and a plain `good/` + `<defect>/` layout.

Ground-truth boxes come from masks (one box per connected component); no mask, no box.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from lriad_desktop.core.finding import Box
from lriad_desktop.core.images import is_image_file

GOOD = "good"


class DatasetError(Exception):
    """A dataset folder whose layout we don't recognise or can't read."""


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


def boxes_from_mask(mask_path: Path, min_area: int = 4) -> tuple[Box, ...]:
    """One box per connected component of a binary mask (pixels > 0)."""
    import cv2

    with Image.open(mask_path) as im:
        arr = np.asarray(im.convert("L")) > 0
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(arr.astype(np.uint8), connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= min_area:
            boxes.append(Box(float(x), float(y), float(x + w), float(y + h)))
    return tuple(sorted(boxes, key=lambda b: (b.y1, b.x1)))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)) if folder.is_dir() else []


def _mvtec_category(cat_dir: Path) -> Iterator[LabelledImage]:
    test = cat_dir / "test"
    for type_dir in sorted(p for p in test.iterdir() if p.is_dir()):
        defect_type = type_dir.name
        for img in _images(type_dir):
            boxes: tuple[Box, ...] = ()
            has_mask = False
            if defect_type != GOOD:
                mask = cat_dir / "ground_truth" / defect_type / f"{img.stem}_mask.png"
                if mask.is_file():
                    boxes, has_mask = boxes_from_mask(mask), True
            yield LabelledImage(img, cat_dir.name, defect_type, boxes, has_mask)


def _visa(root: Path) -> Iterator[LabelledImage]:
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
        boxes: tuple[Box, ...] = ()
        has_mask = False
        if not normal and r.get("mask"):
            mask = root / r["mask"]
            if mask.is_file():
                boxes, has_mask = boxes_from_mask(mask), True
        yield LabelledImage(image, r.get("object", image.parts[-4] if len(image.parts) > 3 else ""),
                            defect_type, boxes, has_mask)


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


def read_dataset(root: str | Path) -> list[LabelledImage]:
    """Every test image of a dataset folder, with its truth."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    layout = detect_layout(root)
    if layout == "visa":
        return list(_visa(root))
    if layout == "mvtec":
        cats = [root] if (root / "test").is_dir() else sorted(c for c in root.iterdir() if (c / "test").is_dir())
        return [item for cat in cats for item in _mvtec_category(cat)]
    items = []
    for type_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        items += [LabelledImage(img, root.name, type_dir.name) for img in _images(type_dir)]
    return items
