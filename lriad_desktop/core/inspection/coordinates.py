"""Coordinate frames of model boxes and their mapping to original-image pixels.

Qwen2.5-VL answers in absolute pixels of the *resized* model input (the processor's
`smart_resize`); Qwen2-VL, Qwen3-VL and Qwen3.5 answer on a 0-1000 grid. The frame, the patch
size and the pixel budget come from the family table (`core.inspection.families`, by `config.json`'s
`model_type`); a folder's `lriad.json` (`{"coordinate_frame": "model_pixels" | "norm1000",
"max_pixels": N, "references": "images" | "side_by_side"}`) overrides them; `references` says how
the model takes golden samples (`core.inspection.references`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from lriad_desktop.core.inspection.families import FAMILIES, SIDECAR, CoordinateFrame, ReferenceMode, read_sidecar
from lriad_desktop.core.inspection.finding import Box

__all__ = ["CoordinateFrame", "ReferenceMode", "DEFAULT_FRAMES", "SIDECAR", "ModelGeometry", "smart_resize", "model_input_size",
           "to_image_pixels", "to_model_frame", "read_model_geometry", "processor_size"]

DEFAULT_FRAMES: dict[str, CoordinateFrame] = {t: f.frame for t, f in FAMILIES.items()}


@dataclass(frozen=True)
class ModelGeometry:
    """How a model sees an image: its box frame, the processor's resize rule, and how it takes references."""

    frame: CoordinateFrame = CoordinateFrame.MODEL_PIXELS
    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    references: ReferenceMode = ReferenceMode.IMAGES

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 28 * 28 * 1280) -> tuple[int, int]:
    """The Qwen-VL processors' resize: `(height, width)` divisible by `factor`, area in range.

    Same arithmetic as transformers' `smart_resize` (a test checks they agree), kept here
    so that core can map boxes without importing transformers.
    """
    if min(height, width) <= 0:
        raise ValueError("image has no pixels")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} is over 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def model_input_size(image_size: tuple[int, int], geometry: ModelGeometry) -> tuple[int, int]:
    """`(width, height)` of the model's input for an image of `(width, height)`."""
    w, h = image_size
    rh, rw = smart_resize(h, w, geometry.factor, geometry.min_pixels, geometry.max_pixels)
    return rw, rh


def _frame_size(image_size: tuple[int, int], geometry: ModelGeometry) -> tuple[float, float]:
    if geometry.frame is CoordinateFrame.NORM1000:
        return 1000.0, 1000.0
    w, h = model_input_size(image_size, geometry)
    return float(w), float(h)


def to_image_pixels(box: tuple[float, float, float, float] | Box, image_size: tuple[int, int],
                    geometry: ModelGeometry) -> Box | None:
    """Map a model-frame box to original-image pixels, clipped to the image.

    Returns None when nothing of the box lies inside the image.
    """
    b = box if isinstance(box, Box) else Box.from_corners(*box)
    fw, fh = _frame_size(image_size, geometry)
    w, h = image_size
    sx, sy = w / fw, h / fh
    mapped = Box(b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy).clipped(w, h)
    if mapped.width <= 0 or mapped.height <= 0:
        return None
    return mapped


def to_model_frame(box: Box, image_size: tuple[int, int], geometry: ModelGeometry) -> Box:
    """Map an original-pixel box into the model's frame (for training targets)."""
    fw, fh = _frame_size(image_size, geometry)
    w, h = image_size
    sx, sy = fw / w, fh / h
    return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy).clipped(fw, fh)


def _processor_settings(folder: Path) -> dict:
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return data.get("image_processor", data)
    return {}


# The most pixels a model input may be resized to: Qwen-VL processors ship 12.8-16.8 MP; a budget far past
# that (10^12 in a config) would make the resize itself allocate terabytes.
MAX_PIXEL_BUDGET = 64 * 1024 * 1024


def pixel_budget_problem(min_pixels: object, max_pixels: object) -> str:
    """Why a pixel budget can't be used ("" when it can): whole numbers from 1 to `MAX_PIXEL_BUDGET`."""
    for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{name} {value!r} is not a positive whole number of pixels"
        if value > MAX_PIXEL_BUDGET:
            return (f"{name} {value} is over the largest pixel budget, {MAX_PIXEL_BUDGET} ({MAX_PIXEL_BUDGET / 1e6:.0f}"
                    " MP; Qwen-VL processors take up to 16.8 MP)")
    return ""


def read_model_geometry(folder: str | Path) -> ModelGeometry:
    """The geometry a model folder declares: `lriad.json`, then the family table, then the processor config.

    The pixel budget is the smaller of the processor's own maximum and the family's default
    (`core.inspection.families.VISUAL_TOKEN_BUDGET` tokens), unless `lriad.json` sets `max_pixels`. The
    engine and training hand this budget to the processor (`processor_size`), so the frame
    computed here is the size the model really sees.
    """
    folder = Path(folder)
    cfg_path = folder / "config.json"
    model_type = ""
    if cfg_path.is_file():
        model_type = json.loads(cfg_path.read_text(encoding="utf-8")).get("model_type", "")
    family = FAMILIES.get(model_type)
    sidecar = read_sidecar(folder)
    frame = sidecar.coordinate_frame or (family.frame if family else CoordinateFrame.NORM1000)
    proc = _processor_settings(folder)
    size = proc.get("size") or {}
    default = ModelGeometry()
    patch = int(proc.get("patch_size") or (family.patch_size if family else default.patch_size))
    merge = int(proc.get("merge_size") or (family.merge_size if family else default.merge_size))
    try:
        min_pixels = int(proc.get("min_pixels") or size.get("shortest_edge") or default.min_pixels)
        max_pixels = int(proc.get("max_pixels") or size.get("longest_edge") or default.max_pixels)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("the processor's min_pixels / max_pixels are not whole numbers") from None
    problem = (pixel_budget_problem(sidecar.min_pixels or 1, sidecar.max_pixels or 1)
               or pixel_budget_problem(min_pixels, max_pixels))
    if problem:
        raise ValueError(problem)
    if sidecar.max_pixels:
        max_pixels = sidecar.max_pixels
    elif family is not None:
        max_pixels = min(max_pixels, family.default_max_pixels)
    if sidecar.min_pixels:
        min_pixels = sidecar.min_pixels
    min_pixels = min(min_pixels, max_pixels)
    references = sidecar.references or (family.references if family else ReferenceMode.IMAGES)
    return ModelGeometry(frame=frame, patch_size=patch, merge_size=merge, min_pixels=min_pixels,
                         max_pixels=max_pixels, references=references)


def processor_size(geometry: ModelGeometry) -> dict[str, int]:
    """The image processor's `size` for this geometry (set it before preprocessing, so both agree)."""
    return {"shortest_edge": geometry.min_pixels, "longest_edge": geometry.max_pixels}
