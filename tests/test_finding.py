"""Findings travel as JSON without loss."""

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict


def test_json_round_trip():
    f = Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(1.5, 2, 30, 40)), Defect("hole", None)),
                ("A washer.", "A scratch."), "<think>..</think>", "lriad-tiny", "/tmp/ä.png", (640, 480),
                "washer", {"total_ms": 12.5})
    assert Finding.from_json(f.to_json()) == f


def test_box_geometry():
    a, b = Box(0, 0, 10, 10), Box(5, 5, 15, 15)
    assert a.iou(b) == 25 / 175
    assert Box.from_corners(10, 10, 0, 0) == a
    assert a.clipped(5, 20) == Box(0, 0, 5, 10)
    assert Box(3, 3, 3, 9).iou(a) == 0.0
