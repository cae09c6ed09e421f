"""How many golden samples go beside each image when the setting says "as the model says".

A model that was not trained with golden samples beside the image reads a prompt with them badly (the bundled
model: unreadable on 40 of 40 BSData images with one beside each); so by default none go, unless the model
folder's `lriad.json` says the model takes them: `"references": "images" | "side_by_side"` (and optionally
`"reference_count": K`, default 1). Golden samples are still marked (G) for the anomaly map and the strip.
"""

from __future__ import annotations

import os

from lriad_desktop.core.inspection.families import read_sidecar

AS_THE_MODEL_SAYS = -1  # the setting's value for "as the model says"
MAX_REFERENCES = 8


def model_reference_count(model_dir: str | os.PathLike | None) -> int:
    """The golden samples the model in `model_dir` takes beside each image: 0 unless its lriad.json says it
    takes them (a folder without one, or one that can't be read, takes none)."""
    if not model_dir:
        return 0
    try:
        sidecar = read_sidecar(model_dir)
    except (OSError, ValueError):
        return 0
    if sidecar.references is None:
        return 0
    count = sidecar.extra.get("reference_count", 1)
    if not isinstance(count, int) or isinstance(count, bool):
        return 1
    return max(0, min(MAX_REFERENCES, count))


def references_per_image(setting: int, model_dir: str | os.PathLike | None) -> int:
    """The number the setting means: itself, or what the model folder says for `AS_THE_MODEL_SAYS`."""
    return model_reference_count(model_dir) if setting < 0 else setting
