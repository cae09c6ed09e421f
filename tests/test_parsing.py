"""Parsing model output: tolerant, never raising, unparsed as a first-class result."""

import pytest

from lriad_desktop.core.coordinates import CoordinateFrame, ModelGeometry
from lriad_desktop.core.engine import finding_from_completion
from lriad_desktop.core.finding import Verdict
from lriad_desktop.core.parsing import parse_completion, split_steps
from lriad_desktop.core.prompting import format_completion

GOOD = '<think>Step 1: A washer. Step 2: Clean.</think><answer>{"anomaly": false, "defects": []}</answer>'
BAD = ('<think>Step 1: A washer. Step 2: A dark line at the upper left. Step 3: Scratch.</think>'
       '<answer>{"anomaly": true, "defects": [{"label": "scratch", "bbox_2d": [10, 20, 30, 40]}]}</answer>')


def test_well_formed_normal_and_anomalous():
    good = parse_completion(GOOD)
    assert good.ok and good.anomaly is False and good.defects == () and good.valid_json
    assert good.steps == ("A washer.", "Clean.")
    bad = parse_completion(BAD)
    assert bad.ok and bad.anomaly is True
    assert [(d.label, d.box) for d in bad.defects] == [("scratch", (10, 20, 30, 40))]
    assert len(bad.steps) == 3


def test_text_around_tags_and_missing_think():
    p = parse_completion("Sure! Here it is:\n" + BAD.replace("<think>", "") + "\nHope that helps.")
    assert p.ok and p.anomaly and p.defects[0].label == "scratch"
    assert p.steps[0] == "A washer."


@pytest.mark.parametrize("answer", [
    "{'anomaly': True, 'defects': [{'label': 'crack', 'bbox_2d': [1, 2, 3, 4]}]}",
    '{"anomaly": true, "defects": [{"label": "crack", "bbox_2d": [1, 2, 3, 4],},],}',
    '```json\n{"anomaly": true, "defects": [{"label": "crack", "bbox_2d": [1.0, 2.0, 3.0, 4.0]}]}\n```',
    '{"anomaly": "yes", "defects": [{"label": "crack", "bbox": [3, 4, 1, 2]}]}',
])
def test_near_json_variants(answer):
    p = parse_completion(f"<think>Step 1: look.</think><answer>{answer}</answer>")
    assert p.ok and p.anomaly is True
    assert p.defects[0].label == "crack" and p.defects[0].box == (1, 2, 3, 4)


def test_truncated_output_keeps_complete_boxes():
    text = ('<think>Step 1: two holes.</think><answer>{"anomaly": true, "defects": [{"label": "hole", '
            '"bbox_2d": [1, 2, 3, 4]}, {"label": "hole", "bbox_2d": [5, 6')
    p = parse_completion(text)
    assert p.ok and p.anomaly is True
    assert p.defects[0].box == (1, 2, 3, 4)


def test_truncated_inside_reasoning_is_unparsed():
    p = parse_completion("<think>Step 1: The surface of the")
    assert not p.ok and p.error
    assert p.steps == ("The surface of the",)


def test_several_boxes_and_float_coordinates():
    text = ('<answer>{"anomaly": true, "defects": [{"label": "hole", "bbox_2d": [1.5, 2.5, 3.5, 4.5]}, '
            '{"label": "stain", "bbox_2d": [10, 10, 20, 20]}]}</answer>')
    p = parse_completion(text)
    assert [d.label for d in p.defects] == ["hole", "stain"]
    assert p.defects[0].box == (1.5, 2.5, 3.5, 4.5)


def test_garbage_never_raises():
    for text in ["", "????", "<answer></answer>", "<answer>{\"defects\": 5}</answer>", "{{{{", "}" * 50,
                 '<answer>{"anomaly": null}</answer>', "<think></think>", "\x00\xff<answer>[1,2]"]:
        p = parse_completion(text)
        assert p.ok is False or p.anomaly is not None


def test_defects_without_verdict_mean_anomalous_and_normal_drops_boxes():
    p = parse_completion('<answer>{"defects": [{"label": "dent", "bbox_2d": [0, 0, 5, 5]}]}</answer>')
    assert p.ok and p.anomaly is True
    q = parse_completion('<answer>{"anomaly": false, "defects": [{"label": "dent", "bbox_2d": [0, 0, 5, 5]}]}</answer>')
    assert q.ok and q.anomaly is False and q.defects == ()


def test_regex_fallback_on_broken_json():
    text = '<answer>anomaly: true, "label": "scratch" "bbox_2d": [4, 5, 6, 7] oops</answer>'
    p = parse_completion(text)
    assert p.ok and p.anomaly and p.defects[0].box == (4, 5, 6, 7)


def test_split_steps_unnumbered():
    assert split_steps("The part is round. It has a dark spot.") == ("The part is round.", "It has a dark spot.")


def test_format_completion_round_trip():
    text = format_completion(["A bottle.", "A crack near the rim."], True, [("crack", (5, 6, 50, 60))])
    p = parse_completion(text)
    assert p.ok and p.valid_json and p.steps == ("A bottle.", "A crack near the rim.")
    assert p.defects[0].box == (5, 6, 50, 60)


def test_finding_unparsed_keeps_raw_text():
    f = finding_from_completion("nonsense", (100, 80), ModelGeometry())
    assert f.verdict is Verdict.UNPARSED and f.raw_text == "nonsense" and f.defects == ()


def test_finding_boxes_clipped_and_partly_outside():
    geo = ModelGeometry(frame=CoordinateFrame.NORM1000)
    text = '<answer>{"anomaly": true, "defects": [{"label": "hole", "bbox_2d": [900, -50, 1200, 500]}, ' \
           '{"label": "hole", "bbox_2d": [1100, 1100, 1200, 1200]}]}</answer>'
    f = finding_from_completion(text, (200, 100), geo)
    assert f.verdict is Verdict.ANOMALOUS
    assert f.defects[0].box.as_list() == [180.0, 0.0, 200.0, 50.0]
    assert f.defects[1].box is None  # entirely outside the image: the label is kept, the box is not
