"""Golden samples beside each image "as the model says": none unless the model folder's lriad.json says so."""

from __future__ import annotations

import json

from lriad_desktop.core.inspection.golden_default import AS_THE_MODEL_SAYS, model_reference_count, references_per_image
from lriad_desktop.core.settings import Settings


def test_none_unless_the_folder_says_the_model_takes_them(tmp_path):
    assert Settings().reference_count == AS_THE_MODEL_SAYS
    assert model_reference_count(tmp_path) == 0 and model_reference_count(None) == 0  # no lriad.json
    (tmp_path / "lriad.json").write_text(json.dumps({"coordinate_frame": "norm1000"}))
    assert references_per_image(AS_THE_MODEL_SAYS, tmp_path) == 0
    (tmp_path / "lriad.json").write_text(json.dumps({"references": "side_by_side"}))
    assert references_per_image(AS_THE_MODEL_SAYS, tmp_path) == 1
    (tmp_path / "lriad.json").write_text(json.dumps({"references": "images", "reference_count": 3}))
    assert references_per_image(AS_THE_MODEL_SAYS, tmp_path) == 3
    assert references_per_image(0, tmp_path) == 0 and references_per_image(2, tmp_path) == 2  # the setting wins


def test_a_broken_lriad_json_means_none(tmp_path):
    (tmp_path / "lriad.json").write_text("{not json")
    assert model_reference_count(tmp_path) == 0
    assert Settings(reference_count=-1).problems() == [] and Settings(reference_count=-2).problems()
