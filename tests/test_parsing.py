"""Parsing model output: tolerant, never raising, unparsed as a first-class result."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lriad_desktop.core.inspection.coordinates import CoordinateFrame, ModelGeometry
from lriad_desktop.core.backends.engine import finding_from_completion
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.inspection.parsing import INTERNAL_ERROR, MAX_DEFECTS, MAX_STEPS, parse_completion, split_steps
from lriad_desktop.core.inspection.prompting import format_completion

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


# --- hostile output: a model can write any of these within its token budget ----------------------------
def _answer_with_box(first: str) -> str:
    return ('<think>Step 1: look.</think><answer>{"anomaly": true, "defects": [{"label": "scratch", '
            f'"bbox_2d": [{first}, 2, 3, 4]}}]}}</answer>')


@pytest.mark.parametrize("digits", [309, 400, 4301, 5000, 50_000])
def test_numbers_too_long_to_be_coordinates_are_no_box(digits):
    p = parse_completion(_answer_with_box("9" * digits))
    assert p.ok and p.anomaly is True  # the verdict and label still count
    assert [(d.label, d.box) for d in p.defects] == [("scratch", None)]
    q = parse_completion(_answer_with_box("1." + "9" * digits))
    assert q.ok and q.defects[0].box is None


@pytest.mark.parametrize("depth", [992, 1000, 5000, 100_000])
def test_deep_nesting_never_recurses(depth):
    brackets = '<answer>{"anomaly": true, "defects": ' + "[" * depth + "]" * depth + "}</answer>"
    objects = "<answer>" + '{"a": ' * depth + "1" + "}" * depth + "</answer>"
    truncated = "<answer>" + '{"anomaly": true, "x": ' * depth  # cut off: the repair closes every bracket
    for text in (brackets, objects, truncated):
        p = parse_completion(text)
        assert p.error != INTERNAL_ERROR
    p = parse_completion(brackets)
    assert p.ok and p.anomaly is True and p.defects == ()  # the verdict is read by the fallback


@pytest.mark.parametrize("coordinates", ["-Infinity, -Infinity, Infinity, Infinity", "NaN, 1, 2, 3",
                                         "1e999, 0, 5, 5", "0, 0, 1e400, 1e400", "0, 0, 1000000000, 1000000000",
                                         "true, 0, 5, 5"])
def test_non_finite_or_absurd_coordinates_are_no_box(coordinates):
    p = parse_completion(f'<answer>{{"anomaly": true, "defects": [{{"label": "hole", "bbox_2d": [{coordinates}]}}]}}'
                         "</answer>")
    assert p.ok and p.defects[0].box is None
    # and so never a box over the whole image
    f = finding_from_completion(f'<answer>{{"anomaly": true, "defects": [{{"label": "hole", "bbox_2d": '
                                f"[{coordinates}]}}]}}</answer>", (200, 100), ModelGeometry())
    assert f.defects[0].box is None
    # the regular-expression fallback keeps the same rule
    r = parse_completion(f'<answer>anomaly: true "label": "hole" bbox_2d: [{coordinates}] oops</answer>')
    assert all(d.box is None for d in r.defects)


def test_non_finite_verdict_is_no_verdict():
    assert not parse_completion('<answer>{"anomaly": NaN, "defects": []}</answer>').ok


def test_boxes_labels_and_steps_are_capped():
    many = ",".join(['{"label": "scratch", "bbox_2d": [1, 2, 3, 4]}'] * 1000)
    p = parse_completion(f'<think>{"Step 1: x. " * 2000}</think><answer>{{"anomaly": true, "defects": [{many}]}}'
                         "</answer>")
    assert p.ok and len(p.defects) == MAX_DEFECTS and len(p.steps) <= MAX_STEPS
    broken = " ".join(['"label": "scratch" bbox_2d: [1, 2, 3, 4]'] * 2000)
    assert len(parse_completion(f"<answer>anomaly: true {broken}</answer>").defects) == MAX_DEFECTS
    long_label = parse_completion('<answer>{"anomaly": true, "defects": [{"label": "' + "x" * 10_000 + '"}]}</answer>')
    assert len(long_label.defects[0].label) <= 80


def test_huge_output_is_read_from_both_ends():
    text = "<think>Step 1: a washer." + " and more" * 200_000 + "</think>" + BAD[BAD.index("<answer>"):]
    p = parse_completion(text)
    assert p.ok and p.defects[0].box == (10, 20, 30, 40) and p.steps[0].startswith("a washer.")


def test_not_a_string_is_unparsed():
    for value in (None, 5, b"<answer>{}</answer>", ["x"]):
        assert parse_completion(value).ok is False  # type: ignore[arg-type]


# --- property: whatever the text, parsing returns and every box is finite and ordered --------------------
_FRAGMENTS = st.sampled_from([
    "<think>", "</think>", "<answer>", "</answer>", "Step 1:", "Step 2.", "{", "}", "[", "]", "(", ")", ",", ":",
    '"', "'", "\\", '"anomaly"', "anomaly", ": true", ": false", "True", "None", "null", "NaN", "Infinity",
    "-Infinity", '"defects"', '"label"', '"bbox_2d"', "bbox", "box=", "x1", '"x1"', "1e308", "1e309", "-0", "0.5",
    "9" * 400, "1" * 5000, "[" * 1200, "{" * 1200, '{"a":' * 50, "]" * 1200, "```json", "```", "\n", " ", "\x00",
    "\ud800", "é", "yes", "defective",
])
_HOSTILE = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12), st.integers().map(str),
                              st.floats(allow_nan=True, allow_infinity=True).map(repr)), max_size=40).map("".join)


def _check(p):
    assert p.error != INTERNAL_ERROR
    assert (p.anomaly is not None) == p.ok
    assert len(p.defects) <= MAX_DEFECTS and len(p.steps) <= MAX_STEPS
    for d in p.defects:
        assert isinstance(d.label, str) and d.label and len(d.label) <= 80
        if d.box is not None:
            x1, y1, x2, y2 = d.box
            assert all(math.isfinite(v) and abs(v) <= 100_000 for v in d.box) and x1 <= x2 and y1 <= y2


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_HOSTILE)
def test_property_parsing_never_raises_on_hostile_text(text):
    _check(parse_completion(text))
    _check(parse_completion("<answer>" + text))
    f = finding_from_completion(text, (64, 48), ModelGeometry())
    assert f.verdict in set(Verdict)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_property_parsing_never_raises_on_random_text(text):
    _check(parse_completion(text))


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                     | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
                         st.sampled_from(["anomaly", "defects", "label", "bbox_2d", "box", "x1", "y1", "x2", "y2",
                                          "type"]) | st.text(max_size=5), inner, max_size=5), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.integers(min_value=0, max_value=400))
def test_property_any_json_answer_and_any_cut(value, cut):
    """Any JSON value (NaN and Infinity included) as the answer, whole or cut off anywhere."""
    body = json.dumps(value)
    for text in (f"<answer>{body}</answer>", f"<answer>{body[:cut]}", f"<think>Step 1: x.</think><answer>{body}"):
        _check(parse_completion(text))


_NUMBER = st.sampled_from(["1", "-3.5", "640", "1e3", "1e309", "-1e309", "9" * 400, "1" * 5000, "0." + "3" * 500,
                           "Infinity", "-Infinity", "NaN", "1e-400", "true", '"12"', "null", "[]", "{}"])


@st.composite
def _grammar_answers(draw):
    """Answers in the output grammar, with hostile numbers, nesting and cuts."""
    defects = []
    for _ in range(draw(st.integers(0, 5))):
        box = "[" + ", ".join(draw(_NUMBER) for _ in range(draw(st.integers(3, 5)))) + "]"
        defects.append(f'{{"label": {json.dumps(draw(st.text(max_size=6)))}, "bbox_2d": {box}}}')
    verdict = draw(st.sampled_from(["true", "false", "NaN", "1" * 400, '"yes"', "null"]))
    body = f'{{"anomaly": {verdict}, "defects": [{", ".join(defects)}]}}'
    depth = draw(st.sampled_from([0, 0, 3, 40, 1200, 3000]))
    body = '{"x": ' * depth + body + "}" * depth if draw(st.booleans()) else "[" * depth + body + "]" * depth
    text = f"<think>Step 1: look.</think><answer>{body}</answer>"
    return text[:draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_grammar_answers())
def test_property_grammar_shaped_hostile_answers(text):
    _check(parse_completion(text))
    assert finding_from_completion(text, (64, 48), ModelGeometry()).verdict in set(Verdict)
