"""The defect kinds, declared once: each kind's label, the name inspectors read, the words and phrase the
reasoning uses, other words for the same kind, and the kinds an inspector would call close.

Read by synthesis (which kinds to paint; each has a renderer in `training/synthetic_data/defects.py`), the
reasoning text (`training/synthetic_data/reasoning.py`), the rewards and scoring (synonyms, near kinds) and the UI's
label picker. The inspector may still type any label; these are the ones the app knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DefectKind:
    """One kind of defect."""

    label: str  # in answers and training data: "missing_part"
    name: str  # what an inspector reads and types, and what labels are compared by: "missing part"
    words: str  # how the reasoning names it: "color defect"
    phrase: str  # the same with its article, for a sentence: "a color defect"
    synonyms: tuple[str, ...] = ()  # other words inspectors and datasets use for the same kind
    near: tuple[str, ...] = ()  # names of kinds an inspector would call close (half credit in the label reward)


DEFECT_KINDS: tuple[DefectKind, ...] = (
    DefectKind("scratch", "scratch", "scratch", "a scratch", near=("crack",)),
    DefectKind("crack", "crack", "crack", "a crack", synonyms=("fracture",)),
    DefectKind("hole", "hole", "hole", "a hole", near=("missing part",)),
    DefectKind("contamination", "contamination", "contamination", "contamination",
               synonyms=("stain", "dirt", "spot"), near=("color",)),
    DefectKind("missing_part", "missing part", "missing part", "a missing part",
               synonyms=("missing", "missing component")),
    DefectKind("deformation", "deformation", "deformation", "a deformation", synonyms=("bent", "dent"),
               near=("missing part",)),
    DefectKind("color", "color", "color defect", "a color defect", synonyms=("colour",)),
)

DEFECT_LABELS: tuple[str, ...] = tuple(k.label for k in DEFECT_KINDS)
KINDS_BY_LABEL: dict[str, DefectKind] = {k.label: k for k in DEFECT_KINDS}
LABEL_SYNONYMS: dict[str, str] = {word: k.name for k in DEFECT_KINDS for word in k.synonyms}
NEAR_KINDS: frozenset[frozenset[str]] = frozenset(frozenset({k.name, other}) for k in DEFECT_KINDS for other in k.near)


def normalise_label(label: str) -> str:
    """Lower case, `_`/`-` as spaces, collapsed whitespace, synonyms as the kind's name."""
    text = re.sub(r"[_\-]+", " ", (label or "").strip().lower())
    text = " ".join(text.split())
    return LABEL_SYNONYMS.get(text, text)


KINDS_BY_NAME: dict[str, DefectKind] = {k.name: k for k in DEFECT_KINDS}


def canonical_label(label: str) -> str:
    """The one spelling a label is stored and exported in: a known kind's label ("missing part",
    "missing_part" and "Missing-Part" are all "missing_part"); another label normalised ("" stays "")."""
    name = normalise_label(label)
    kind = KINDS_BY_NAME.get(name)
    return kind.label if kind is not None else name


def display_name(label: str) -> str:
    """A label as the inspector reads it: a known kind's name ("missing part"), else the label normalised."""
    name = normalise_label(label)
    kind = KINDS_BY_NAME.get(name)
    return kind.name if kind is not None else name
