"""The object names training prompts use, so that the model copies the prompt's name.

Inspectors name what they inspect in their own words ("pcb", "board", "line 3 housing"), and
`lriad evaluate` names it after the data set's folder. A model trained only on one fixed name
per kind learns to guess the kind from the pixels and writes about fabric when asked about a
washer. With the recipe option `object_names="aliases"` the prompt names the object in varied
ways (the kind's usual names, its folder name, a generic word, or a made-up name) and the
reasoning copies whatever the prompt said.
"""

from __future__ import annotations

import numpy as np

from training.synthetic_data.samples import Sample

# Recipe option `object_names`: "kind" (the kind's one object name, as before) or "aliases".
OBJECT_NAME_MODES: tuple[str, ...] = ("kind", "aliases")

# Other names of each product kind; the kind's key (a data set's folder name) and its object
# name are always among them.
ALIASES: dict[str, tuple[str, ...]] = {
    "fabric": ("fabric", "woven fabric", "cloth", "textile", "woven cloth"),
    "metal": ("metal", "brushed metal plate", "metal plate", "steel sheet", "brushed steel"),
    "wood": ("wood", "wood panel", "wooden board", "timber panel"),
    "leather": ("leather", "leather hide", "leather sheet"),
    "tile": ("tile", "ceramic tile", "glazed tile", "floor tile"),
    "carpet": ("carpet", "rug", "carpet sample"),
    "washer": ("washer", "metal washer", "flat washer", "ring washer"),
    "bottle": ("bottle", "glass bottle", "bottle neck", "bottle top"),
    "screw": ("screw", "metal screw", "wood screw", "machine screw"),
    "pcb": ("pcb", "circuit board", "printed circuit board", "board"),
    "capsule": ("capsule", "pill", "gel capsule", "medicine capsule"),
}
GENERIC_NAMES: tuple[str, ...] = ("part", "product", "item", "sample", "workpiece", "component")
_SYLLABLES: tuple[str, ...] = ("ka", "ro", "ven", "ti", "lo", "mar", "set", "bel", "dor", "nix", "pa", "gul",
                               "ser", "tan", "vo", "mi", "ral", "den", "ko", "lin")
# Shares of the names drawn in "aliases" mode: the kind's aliases, a generic word, a made-up word.
_SHARES = (0.6, 0.2, 0.2)


def made_up_name(rng: np.random.Generator) -> str:
    """A pronounceable word nobody trained on (two or three syllables), sometimes with a number."""
    word = "".join(_SYLLABLES[int(i)] for i in rng.integers(len(_SYLLABLES), size=int(rng.integers(2, 4))))
    return f"{word} {int(rng.integers(1, 20))}" if rng.random() < 0.25 else word


def prompt_name(sample: Sample, rng: np.random.Generator, mode: str = "kind") -> str:
    """The object name one training prompt uses for `sample` (and its reasoning copies)."""
    if mode not in OBJECT_NAME_MODES:
        raise ValueError(f"object_names {mode!r}: expected one of {', '.join(OBJECT_NAME_MODES)}")
    if mode == "kind" or sample.kind not in ALIASES:
        return sample.object_name
    draw = rng.random()
    if draw < _SHARES[0]:
        names = ALIASES[sample.kind]
        return names[int(rng.integers(len(names)))]
    if draw < _SHARES[0] + _SHARES[1]:
        return GENERIC_NAMES[int(rng.integers(len(GENERIC_NAMES)))]
    return made_up_name(rng)
