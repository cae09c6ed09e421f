"""Short step-by-step reasoning text grounded in a synthetic sample's ground truth.

The text names the object and its normal surface, scans it, says where an anomaly is (one
of nine fixed grid phrases) and what it looks like, then gives the verdict. The location and
label vocabularies are fixed so that a reward can read them back (:func:`location_of_text`,
:func:`label_of_text`) and check them against the answer. The ``<answer>`` part is formatted
elsewhere, in the model's coordinate frame.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from lriad_desktop.core.defect_kinds import DEFECT_KINDS, KINDS_BY_LABEL
from lriad_desktop.core.inspection.prompting import object_phrase
from training.synthetic_data.samples import PRODUCT_KINDS, Sample

LOCATION_PHRASES: tuple[str, ...] = (
    "upper left", "upper centre", "upper right",
    "centre left", "centre", "centre right",
    "lower left", "lower centre", "lower right",
)

# The defect label as words in the reasoning (`DefectKind.words`).
LABEL_WORDS: dict[str, str] = {k.label: k.words for k in DEFECT_KINDS}

_ROWS, _COLS = ("upper", "centre", "lower"), ("left", "centre", "right")
# Two-word phrases first so "centre" alone only matches when no longer phrase does.
_LOCATION_RE = re.compile(r"\b(" + "|".join(sorted(LOCATION_PHRASES, key=len, reverse=True)) + r")\b")
_LABEL_RE = re.compile(r"\b(" + "|".join(sorted(LABEL_WORDS.values(), key=len, reverse=True)) + r")\b")
_WORD_TO_LABEL = {v: k for k, v in LABEL_WORDS.items()}
_SYNONYMS = (("center", "centre"), ("top", "upper"), ("bottom", "lower"), ("colour", "color"))


def location_words(box: Sequence[float], width: int, height: int, near_rim: bool = False) -> str:
    """Where ``box`` (x1, y1, x2, y2) lies in a ``width`` x ``height`` image, as one of
    :data:`LOCATION_PHRASES` (3 x 3 grid cell of the box centre).

    With ``near_rim`` (round parts), " near the rim" is added when the box centre is far
    from the image centre; the grid phrase is always present.
    """
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    col, row = min(2, max(0, int(cx * 3))), min(2, max(0, int(cy * 3)))
    phrase = LOCATION_PHRASES[row * 3 + col]
    if near_rim and np.hypot(cx - 0.5, cy - 0.5) > 0.3:
        phrase += " near the rim"
    return phrase


def _normalise(text: str) -> str:
    text = text.lower()
    for word, canonical in _SYNONYMS:
        text = re.sub(rf"\b{word}\b", canonical, text)
    return text


def locations_in_text(text: str) -> list[str]:
    """All grid phrases named in ``text``, in order of appearance (US spelling and
    top/bottom are read as centre and upper/lower)."""
    return _LOCATION_RE.findall(_normalise(text))


def location_of_text(text: str) -> str | None:
    """The first of :data:`LOCATION_PHRASES` that ``text`` names, or None."""
    found = locations_in_text(text)
    return found[0] if found else None


def label_of_text(text: str) -> str | None:
    """The first defect label (a key of :data:`LABEL_WORDS`) that ``text`` names, or None."""
    match = _LABEL_RE.search(_normalise(text))
    return _WORD_TO_LABEL[match.group(1)] if match else None


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


_LOOK = (
    "The image shows {a_obj}; normally {surface}.",
    "This is {a_obj}, which should show {surface}.",
    "Object: {obj}. A good one shows {surface}.",
    "{A_obj}: normally {surface}.",
)
_MASS_NOUNS = ("leather", "woven fabric", "fabric", "carpet", "wood", "metal")
_SCAN = (
    "I scan the surface region by region.",
    "I check it from edge to edge.",
    "I look over every region.",
    "I compare each area with a good part.",
)
_EXTRA = (
    "I check edges, tone and shape.",
    "Slight lighting changes are normal.",
    "I compare texture across the image.",
)
_FOUND = (
    "In the {loc} there is {what}: {label}.",
    "At the {loc} I see {what}, likely {label}.",
    "{What} breaks the pattern in the {loc}: {label}.",
    "The {loc} shows {what}, typical of {label}.",
)
_FOUND_TWO = (
    "{What} in the {loc} and {what2} in the {loc2}: {words} in two places.",
    "I see {what} at the {loc} and {what2} at the {loc2}; {words} in two places.",
)
_CLEAN = (
    "The surface is uniform and intact; nothing is out of place.",
    "Everything looks even and complete.",
    "The pattern is regular and the outline intact.",
    "No region differs from normal.",
)
_BAD = (
    "Verdict: defective, {words}.",
    "So it is defective: {words}.",
    "Conclusion: anomalous, {words}.",
)
_GOOD = (
    "Verdict: normal, no defect.",
    "So the {obj} is normal.",
    "Conclusion: good, no anomaly.",
)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _with_article(name: str) -> str:
    if name.lower() in _MASS_NOUNS:
        return name
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


# Recipe option `reasoning`: "full" (3-5 steps in varied wording) or "short" (two steps, one
# wording each: what the object is and should look like, then what was found).
REASONING_STYLES: tuple[str, ...] = ("full", "short")
_SHORT_LOOK = "{A_obj}, normally {surface}."
_SHORT_FOUND = "In the {loc}, {what}: {label}."
_SHORT_FOUND_TWO = "In the {loc}, {what}; in the {loc2}, {what2}: {words}."
_SHORT_CLEAN = "Nothing differs from normal."


def reasoning_steps(sample: Sample, rng: np.random.Generator, object_name: str | None = None,
                    style: str = "full") -> list[str]:
    """3-5 short reasoning steps for ``sample`` with randomly chosen phrasing (two fixed ones
    with ``style="short"``).

    The first step names ``object_name`` as the prompt gave it (the sample's own object name
    when None), so the reasoning is about the object asked about. Anomalous samples name the
    location (a :data:`LOCATION_PHRASES` entry, first defect first), the appearance and the
    label words; good samples name neither.
    """
    if style not in REASONING_STYLES:
        raise ValueError(f"reasoning {style!r}: expected one of {', '.join(REASONING_STYLES)}")
    obj, surface = (object_phrase(object_name) if object_name else sample.object_name), sample.surface
    a_obj = _with_article(obj)
    if style == "short":
        return _short_steps(sample, a_obj, surface)
    steps = [_pick(rng, _LOOK).format(obj=obj, a_obj=a_obj, A_obj=_capital(a_obj), surface=surface),
             _pick(rng, _SCAN)]
    if rng.random() < 0.3 and len(sample.defects) < 2:  # keep two-defect reasoning short
        steps.append(_pick(rng, _EXTRA))
    if sample.anomalous:
        w, h = sample.image.size
        spec = PRODUCT_KINDS.get(sample.kind)
        rim = bool(spec and spec.is_round)
        first = sample.defects[0]
        label = KINDS_BY_LABEL[first.label].phrase
        loc = location_words(first.box, w, h, near_rim=rim)
        if len(sample.defects) > 1:
            second = sample.defects[1]
            loc2 = location_words(second.box, w, h, near_rim=rim)
            steps.append(_pick(rng, _FOUND_TWO).format(
                loc=loc, what=first.appearance, What=_capital(first.appearance),
                loc2=loc2, what2=second.appearance, words=LABEL_WORDS[first.label]))
        else:
            steps.append(_pick(rng, _FOUND).format(
                loc=loc, what=first.appearance, What=_capital(first.appearance), label=label))
        steps.append(_pick(rng, _BAD).format(obj=obj, words=LABEL_WORDS[first.label]))
    else:
        steps.append(_pick(rng, _CLEAN))
        steps.append(_pick(rng, _GOOD).format(obj=obj))
    return steps


def _short_steps(sample: Sample, a_obj: str, surface: str) -> list[str]:
    steps = [_SHORT_LOOK.format(A_obj=_capital(a_obj), surface=surface)]
    if not sample.anomalous:
        return steps + [_SHORT_CLEAN]
    w, h = sample.image.size
    spec = PRODUCT_KINDS.get(sample.kind)
    rim = bool(spec and spec.is_round)
    first = sample.defects[0]
    loc = location_words(first.box, w, h, near_rim=rim)
    if len(sample.defects) > 1:
        second = sample.defects[1]
        return steps + [_SHORT_FOUND_TWO.format(loc=loc, what=first.appearance,
                                                loc2=location_words(second.box, w, h, near_rim=rim),
                                                what2=second.appearance, words=LABEL_WORDS[first.label])]
    return steps + [_SHORT_FOUND.format(loc=loc, what=first.appearance, label=KINDS_BY_LABEL[first.label].phrase)]


def think_text(steps: Sequence[str]) -> str:
    """Join steps as "Step 1: ... Step 2: ..."."""
    return " ".join(f"Step {i}: {step}" for i, step in enumerate(steps, 1))
