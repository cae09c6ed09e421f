"""Comparison with a golden sample: the reference and the query as one side-by-side image.

The model sees one composite, the good reference on the left and the image under inspection
on the right, so every patch of the query can be compared with its counterpart. Training and
inference both compose here and map boxes back from the right half here, so the two can
never differ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from lriad_desktop.core.inspection.finding import Box, Finding

# The value a model folder's lriad.json gives under "references" when it expects composites.
SIDE_BY_SIDE = "side_by_side"
# Each half of the composite, in pixels. A fixed size puts every query patch at the same offset
# from its counterpart in the reference (8 merged image tokens at Qwen's 28 px), whatever the
# image's size and shape, so attention can learn that one offset.
HALF_SIZE: tuple[int, int] = (224, 224)


@dataclass(frozen=True)
class Composite:
    """A side-by-side image and where the query lies in it (its right half)."""

    image: Image.Image  # RGB, 2 * half width x half height
    query_size: tuple[int, int]  # width, height of the query as given
    half_size: tuple[int, int]  # width, height of each half

    @property
    def offset_x(self) -> int:
        """Where the query's left edge is in the composite."""
        return self.half_size[0]


def compose(reference: Image.Image, query: Image.Image, half_size: tuple[int, int] = HALF_SIZE) -> Composite:
    """Reference left, query right, one RGB image; both are resized to `half_size`."""
    query = query.convert("RGB")
    halves = [im if im.size == half_size else im.resize(half_size, Image.BILINEAR)
              for im in (reference.convert("RGB"), query)]
    canvas = Image.new("RGB", (2 * half_size[0], half_size[1]))
    canvas.paste(halves[0], (0, 0))
    canvas.paste(halves[1], (half_size[0], 0))
    return Composite(canvas, query.size, half_size)


def _scale(composite: Composite) -> tuple[float, float]:
    (qw, qh), (hw, hh) = composite.query_size, composite.half_size
    return hw / qw, hh / qh


def to_composite(box: Box, composite: Composite) -> Box:
    """A box in query pixels as a box in the composite's pixels (scaled into the right half)."""
    sx, sy = _scale(composite)
    dx = composite.offset_x
    return Box(box.x1 * sx + dx, box.y1 * sy, box.x2 * sx + dx, box.y2 * sy)


def to_query(box: Box, composite: Composite) -> Box | None:
    """A box in the composite's pixels as a box in query pixels, clipped to the query; None when
    it lies wholly in the reference half (a model pointing at the golden sample found nothing there)."""
    sx, sy = _scale(composite)
    dx = composite.offset_x
    back = Box((box.x1 - dx) / sx, box.y1 / sy, (box.x2 - dx) / sx, box.y2 / sy)
    clipped = back.clipped(*composite.query_size)
    return clipped if clipped.area > 0 else None


def query_finding(finding: Finding, composite: Composite) -> Finding:
    """A finding made on the composite, in the query's pixels.

    Boxes move into the query's frame; a defect whose box lies wholly on the reference keeps
    its label but loses the box (the verdict is the model's and stays as it was).
    """
    defects = tuple(replace(d, box=to_query(d.box, composite) if d.box is not None else None)
                    for d in finding.defects)
    return replace(finding, defects=defects, image_size=composite.query_size)
