"""Object names for training prompts, and the check that reasoning names the prompted object."""

from __future__ import annotations

import numpy as np
import pytest

from lriad_desktop.core.inspection.prompting import reasoning_names_object
from training.synthetic_data.prompt_names import ALIASES, GENERIC_NAMES, prompt_name
from training.synthetic_data.reasoning import reasoning_steps, think_text
from training.synthetic_data.samples import PRODUCT_KINDS, generate_sample


def test_every_kind_has_aliases_with_its_folder_name_and_object_name():
    assert set(ALIASES) == set(PRODUCT_KINDS)
    for kind, spec in PRODUCT_KINDS.items():
        assert kind in ALIASES[kind] and spec.object_name in ALIASES[kind]


def test_kind_mode_keeps_the_kinds_own_name():
    sample = generate_sample(np.random.default_rng(0), kind="pcb")
    assert prompt_name(sample, np.random.default_rng(1), "kind") == "circuit board"


def test_alias_mode_mixes_aliases_generic_and_made_up_names():
    rng = np.random.default_rng(3)
    sample = generate_sample(np.random.default_rng(0), kind="washer")
    names = [prompt_name(sample, rng, "aliases") for _ in range(400)]
    aliases = sum(n in ALIASES["washer"] for n in names)
    generic = sum(n in GENERIC_NAMES for n in names)
    made_up = len(names) - aliases - generic
    assert 180 < aliases < 300 and 40 < generic < 120 and 40 < made_up < 120
    assert len(set(names)) > 50  # made-up names are many


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="object_names"):
        prompt_name(generate_sample(np.random.default_rng(0)), np.random.default_rng(0), "other")


@pytest.mark.parametrize("style", ["full", "short"])
def test_reasoning_names_the_prompted_object_in_either_style(style):
    rng = np.random.default_rng(5)
    for i in range(40):
        sample = generate_sample(np.random.default_rng([9, i]), size=(96, 96))
        name = prompt_name(sample, rng, "aliases")
        text = think_text(reasoning_steps(sample, rng, name, style))
        assert reasoning_names_object(text, name), (name, text)


def test_short_reasoning_is_two_steps_and_shorter():
    rng = np.random.default_rng(2)
    full, short = [], []
    for i in range(60):
        sample = generate_sample(np.random.default_rng([4, i]), size=(96, 96))
        steps = reasoning_steps(sample, rng, style="short")
        assert len(steps) == 2
        if sample.anomalous:
            assert "In the " in steps[1]
        short.append(len(think_text(steps)))
        full.append(len(think_text(reasoning_steps(sample, rng))))
    assert sum(short) < 0.7 * sum(full)


def test_names_object_check():
    assert reasoning_names_object(["Step 1: A metal washer, normally flat."], "metal_washer")
    assert reasoning_names_object("the PCB looks fine", "pcb")
    assert not reasoning_names_object("So the woven fabric is normal.", "washer")
    assert not reasoning_names_object("a pcbx board", "pcb")  # a whole word, not part of one
