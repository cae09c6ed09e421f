"""Comparison with a golden sample: one composite image, boxes mapped back from its right half."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.inspection.side_by_side import HALF_SIZE, compose, query_finding, to_composite, to_query


def _solid(size, colour):
    return Image.new("RGB", size, colour)


def test_compose_puts_the_reference_left_and_the_query_right_at_a_fixed_size():
    composite = compose(_solid((50, 30), (255, 0, 0)), _solid((120, 80), (0, 0, 255)))
    assert composite.image.size == (2 * HALF_SIZE[0], HALF_SIZE[1]) and composite.query_size == (120, 80)
    pixels = np.asarray(composite.image)
    assert (pixels[:, :HALF_SIZE[0]] == (255, 0, 0)).all()
    assert (pixels[:, HALF_SIZE[0]:] == (0, 0, 255)).all()
    assert composite.offset_x == HALF_SIZE[0]


def test_compose_accepts_other_modes_and_half_sizes():
    composite = compose(Image.new("L", (10, 10), 128), Image.new("RGBA", (30, 10)), half_size=(16, 8))
    assert composite.image.mode == "RGB" and composite.image.size == (32, 8)


@pytest.mark.parametrize("query_size", [(100, 60), (224, 224), (512, 170)])
def test_boxes_round_trip_through_the_composite(query_size):
    composite = compose(_solid((64, 64), 0), _solid(query_size, 0))
    box = Box(10, 5, 40, 30)
    moved = to_composite(box, composite)
    assert moved.x1 >= HALF_SIZE[0] and moved.x2 <= 2 * HALF_SIZE[0] and moved.y2 <= HALF_SIZE[1]
    back = to_query(moved, composite)
    assert back is not None and np.allclose(back.as_list(None), box.as_list(None))


def test_a_box_on_the_reference_is_dropped_and_one_across_the_seam_is_clipped():
    composite = compose(_solid((100, 50), 0), _solid((112, 112), 0))  # half 224: scale 2
    assert to_query(Box(10, 5, 60, 30), composite) is None
    assert to_query(Box(200, 10, 244, 300), composite) == Box(0, 5, 10, 112)


def test_query_finding_maps_every_box_and_keeps_the_verdict():
    composite = compose(_solid((100, 60), 0), _solid((112, 112), 0))
    finding = Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(244, 20, 264, 40)), Defect("hole", Box(5, 5, 9, 9)),
                                          Defect("crack", None)), image_size=composite.image.size)
    mapped = query_finding(finding, composite)
    assert mapped.verdict is Verdict.ANOMALOUS and mapped.image_size == (112, 112)
    assert [d.box for d in mapped.defects] == [Box(10, 10, 20, 20), None, None]
    assert mapped.labels == ("scratch", "hole", "crack")
