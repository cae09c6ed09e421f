"""Every reward on hand-written completions."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.recipes.rewards import (REWARDS, RareDefectEmphasis, class_counts, completion_text, consistency_reward,
                              format_reward, label_reward, localisation_reward, matched_iou, reward_functions,
                              verdict_reward)

GOOD = '<think>Step 1: A washer. Step 2: The surface is clean.</think><answer>{"anomaly": false, "defects": []}</answer>'
SCRATCH_UL = ('<think>Step 1: A washer. Step 2: In the upper left there is a thin line: a scratch.</think>'
              '<answer>{"anomaly": true, "defects": [{"label": "scratch", "bbox_2d": [10, 10, 40, 30]}]}</answer>')
CRACK_UL = SCRATCH_UL.replace('"scratch"', '"crack"')
SLOPPY = "I think it is bad. {'anomaly': True, 'defects': [{'label': 'scratch', 'bbox_2d': [10, 10, 40, 30],}]}"
GARBAGE = "<think>Step 1: the"


def test_completion_text_accepts_trl_conversational_form():
    assert completion_text([{"role": "assistant", "content": GOOD}]) == GOOD
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]) == GOOD


def test_format():
    assert format_reward([GOOD, SCRATCH_UL, SLOPPY, GARBAGE]) == [1.0, 1.0, 0.5, 0.0]


def test_verdict():
    assert verdict_reward([GOOD, SCRATCH_UL, GARBAGE, GOOD], anomalous=[False, True, True, True]) == [1, 1, 0, 0]


def test_label_exact_near_and_good():
    got = label_reward([SCRATCH_UL, CRACK_UL, GOOD, SCRATCH_UL, GARBAGE],
                       anomalous=[True, True, False, False, True],
                       defect_labels=[["scratch"], ["scratch"], [], [], ["scratch"]])
    assert got == [1.0, 0.5, 1.0, 0.0, 0.0]


def test_localisation_matching_and_penalties():
    truth = [[10, 10, 40, 30]]
    two = SCRATCH_UL.replace('[10, 10, 40, 30]}]', '[10, 10, 40, 30]}, {"label": "scratch", "bbox_2d": [80, 80, 90, 90]}]')
    got = localisation_reward([SCRATCH_UL, two, GOOD, GOOD, SCRATCH_UL], boxes=[truth, truth, truth, [], []])
    assert got == [1.0, 0.5, 0.0, 1.0, 0.0]
    assert matched_iou([[0, 0, 10, 10]], [[0, 0, 10, 5]]) == pytest.approx(0.5)
    # one-to-one: a single prediction can't match two truths
    assert matched_iou([[0, 0, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 10]]) == pytest.approx(0.5)


def test_consistency_reads_reasoning_against_answer():
    wrong_place = SCRATCH_UL.replace("upper left", "lower right")
    wrong_label = SCRATCH_UL.replace("a scratch", "a hole")
    good_naming_defect = GOOD.replace("The surface is clean.", "A crack in the centre.")
    got = consistency_reward([SCRATCH_UL, wrong_place, wrong_label, GOOD, good_naming_defect, GARBAGE],
                             frame_size=[[112, 112]] * 6)
    assert got == [1.0, 0.5, 0.5, 1.0, 0.0, 0.0]


def test_rare_defect_emphasis_weights_rare_and_failing_classes_more():
    counts = class_counts(["good"] * 10 + ["scratch"] * 20 + ["hole"] * 2)
    rare = RareDefectEmphasis(counts, alpha=1.0, gamma=2.0, momentum=0.0)
    assert rare.rarity["hole"] > rare.rarity["scratch"]
    logged = {}
    hole = SCRATCH_UL.replace('"scratch"', '"hole"')
    r = rare([SCRATCH_UL, hole, GOOD], anomalous=[True, True, False], defect_labels=[["scratch"], ["hole"], []],
             defect_class=["scratch", "hole", "good"], log_metric=lambda k, v: logged.__setitem__(k, v))
    # all correct: rewards are the weights before the update; the rare class gets the most
    assert r[1] > r[0] > 0 and r[2] > 0
    assert logged["success/hole"] == 1.0 and "weight/scratch" in logged
    # with momentum 0 the success rate is now 1 for these classes: no more emphasis
    assert rare.weight("hole") == 0.0
    # a class the model keeps failing gets a growing weight
    r2 = rare([GOOD], anomalous=[True], defect_labels=[["scratch"]], defect_class=["scratch"])
    assert r2 == [0.0] and rare.weight("scratch") == pytest.approx(rare.rarity["scratch"])
    assert set(rare.stats()) == {"good", "scratch", "hole"}


def test_registry():
    assert {"format", "verdict", "label", "localisation", "consistency"} <= set(REWARDS)
    assert [f.__name__ for f in reward_functions(["format", "verdict"])] == ["format", "verdict"]
    with pytest.raises(KeyError, match="unknown reward"):
        reward_functions(["nope"])


_PIECES = st.sampled_from([
    "<think>", "</think>", "<answer>", "</answer>", "Step 1: upper left scratch.", "{", "}", "[", "]", ",",
    '"anomaly": true', '"anomaly": false', '"defects": [', '{"label": "scratch", "bbox_2d": [', "10, 10, 40, 30",
    "5, 5, 5, 5", "-Infinity, NaN, Infinity, 1", "9" * 400, "1" * 5000, "[" * 1500, '{"a": ' * 1200, "]}", "\x00",
])
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=10)), max_size=30).map("".join)
_COMPLETION = st.one_of(
    _TEXT,
    _TEXT.map(lambda t: [{"role": "assistant", "content": t}]),
    _TEXT.map(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}, {"type": "image"}]}]),
    st.sampled_from([None, 3, [], [None], [{"role": "assistant"}], [{"content": None}], [{"content": [5, {"text": 7}]}]]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_COMPLETION, min_size=1, max_size=4), st.booleans())
def test_property_no_reward_raises_on_any_completion(completions, anomalous):
    """Whatever a policy writes, every reward returns one finite number per completion."""
    n = len(completions)
    columns = dict(anomalous=[anomalous] * n, defect_labels=[["scratch"] if anomalous else []] * n,
                   boxes=[[[10, 10, 40, 30]] if anomalous else []] * n, frame_size=[[112, 112]] * n,
                   defect_class=["scratch" if anomalous else "good"] * n)
    rare = RareDefectEmphasis({"scratch": 3, "good": 9})
    for fn in [*REWARDS.values(), rare]:
        got = fn(completions, **columns)
        assert len(got) == n and all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in got), fn.__name__
