"""Reasoning text: grid locations, label words, phrasing variety and length."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.synthetic_data.reasoning import (
    LABEL_WORDS,
    LOCATION_PHRASES,
    label_of_text,
    location_of_text,
    location_words,
    locations_in_text,
    reasoning_steps,
    think_text,
)
from training.synthetic_data.samples import DEFECT_LABELS, Defect, Sample, generate_dataset

W, H = 300, 240


def _sample(defects: tuple[Defect, ...], kind: str = "tile", object_name: str = "ceramic tile") -> Sample:
    return Sample(Image.new("RGB", (W, H)), np.zeros((H, W), np.uint8), kind, object_name,
                  "a smooth glaze with fine speckles", defects)


def _cell_box(row: int, col: int) -> tuple[int, int, int, int]:
    cx, cy = int((col + 0.5) * W / 3), int((row + 0.5) * H / 3)
    return cx - 10, cy - 8, cx + 10, cy + 8


def test_location_words_for_each_cell():
    expected = [["upper left", "upper centre", "upper right"],
                ["centre left", "centre", "centre right"],
                ["lower left", "lower centre", "lower right"]]
    for row in range(3):
        for col in range(3):
            assert location_words(_cell_box(row, col), W, H) == expected[row][col]
    assert LOCATION_PHRASES == tuple(p for r in expected for p in r)


def test_location_words_uses_the_box_centre():
    assert location_words((0, 0, 300, 240), W, H) == "centre"
    assert location_words((190, 0, 300, 70), W, H) == "upper right"
    assert location_words((299, 239, 300, 240), W, H) == "lower right"


def test_near_the_rim_keeps_the_grid_phrase():
    corner = location_words(_cell_box(2, 0), W, H, near_rim=True)
    assert corner == "lower left near the rim"
    assert location_of_text(corner) == "lower left"
    assert location_words(_cell_box(1, 1), W, H, near_rim=True) == "centre"


@pytest.mark.parametrize("phrase", LOCATION_PHRASES)
def test_location_of_text_round_trip(phrase):
    assert location_of_text(f"Step 3: In the {phrase} there is a thin dark line.") == phrase
    assert location_of_text(f"At the {phrase.upper()}, something.") == phrase


def test_location_of_text_prefers_whole_phrases_and_reads_synonyms():
    assert location_of_text("a dent in the upper centre region") == "upper centre"
    assert location_of_text("a dent at the center right") == "centre right"
    assert location_of_text("a stain at the top left") == "upper left"
    assert location_of_text("a spot in the centre") == "centre"
    assert location_of_text("Verdict: normal, no defect.") is None
    assert locations_in_text("upper left and then lower right") == ["upper left", "lower right"]


def test_label_of_text():
    for label, words in LABEL_WORDS.items():
        assert label_of_text(f"Verdict: defective, {words}.") == label
    assert label_of_text("a colour defect here") == "color"
    assert label_of_text("So the part is normal.") is None


@pytest.mark.parametrize("label", DEFECT_LABELS)
def test_reasoning_for_anomalous_sample_names_label_and_location(label):
    box = _cell_box(0, 2)
    sample = _sample((Defect(label, box, "an odd mark", "obvious"),))
    for seed in range(5):
        steps = reasoning_steps(sample, np.random.default_rng(seed))
        assert 3 <= len(steps) <= 5
        text = think_text(steps)
        assert LABEL_WORDS[label] in text
        assert "an odd mark" in text
        assert location_of_text(text) == "upper right"
        assert label_of_text(text) == label
        assert "defective" in steps[-1] or "anomalous" in steps[-1]


def test_reasoning_for_good_sample_names_no_location_or_label():
    sample = _sample(())
    for seed in range(20):
        steps = reasoning_steps(sample, np.random.default_rng(seed))
        text = think_text(steps)
        assert 3 <= len(steps) <= 5
        assert location_of_text(text) is None and label_of_text(text) is None
        assert "ceramic tile" in steps[0]


def test_two_defects_name_both_locations():
    defects = (Defect("hole", _cell_box(0, 0), "a dark round hole", "obvious"),
               Defect("hole", _cell_box(2, 2), "a small dark pit", "subtle"))
    text = think_text(reasoning_steps(_sample(defects), np.random.default_rng(0)))
    assert locations_in_text(text) == ["upper left", "lower right"]
    assert label_of_text(text) == "hole"


def test_round_parts_may_say_near_the_rim():
    sample = _sample((Defect("crack", _cell_box(0, 0), "a jagged dark line", "obvious"),),
                     kind="washer", object_name="metal washer")
    text = think_text(reasoning_steps(sample, np.random.default_rng(0)))
    assert "upper left near the rim" in text and "metal washer" in text


def test_phrasing_varies_across_seeds():
    sample = _sample((Defect("scratch", _cell_box(1, 1), "a thin dark line", "obvious"),))
    texts = {think_text(reasoning_steps(sample, np.random.default_rng(s))) for s in range(30)}
    assert len(texts) >= 10
    firsts = {reasoning_steps(sample, np.random.default_rng(s))[0] for s in range(30)}
    assert len(firsts) >= 3


def test_think_text_format():
    assert think_text(["A.", "B.", "C."]) == "Step 1: A. Step 2: B. Step 3: C."


def test_reasoning_on_generated_samples_is_short_and_consistent():
    for i, sample in enumerate(generate_dataset(40, 17, size=(160, 160))):
        text = think_text(reasoning_steps(sample, np.random.default_rng(i)))
        assert len(text.split()) <= 70
        if sample.anomalous:
            first = sample.defects[0]
            assert label_of_text(text) == first.label
            assert location_of_text(text) == location_words(first.box, 160, 160)
        else:
            assert label_of_text(text) is None and location_of_text(text) is None
