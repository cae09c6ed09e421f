"""Golden samples in training rows: flag rows carry their object's references (as inspection shows them),
a deleted golden sample is a skipped line and rows without it, side-by-side rows put their boxes in the right
half, and a real GRPO step (trl + peft on the tiny model) trains on rows of several images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lriad_desktop.core.inspection.coordinates import ReferenceMode, read_model_geometry
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.inspection.side_by_side import HALF_SIZE
from lriad_desktop.core.store.review_store import ReviewStore
from training.recipes.flags import collect, references_of, training_rows
from training.recipes.grpo import GRPORecipe, run_grpo
from training.synthetic_data.samples import generate_sample
from training.synthetic_data.targets import grpo_row_from_sample

SIZE = (96, 80)


def _store(tmp_path, n_flag=3, n_accept=6, golden=(3, 4)):
    """Flags and accepts of one object, with the accepted images `golden` (indexes) filed as its golden samples."""
    folder = tmp_path / "line3"
    folder.mkdir()
    store = ReviewStore.open(tmp_path / "reviews.sqlite3")
    paths = []
    for i in range(n_flag + n_accept):
        s = generate_sample(np.random.default_rng([11, i]), kind="washer", defect="scratch" if i < n_flag else False,
                            size=SIZE)
        path = folder / f"{i:03d}.png"
        s.image.save(path)
        img = store.add_image(path, "metal washer")
        if i < n_flag:
            review = Review(ReviewKind.FLAG, Verdict.ANOMALOUS,
                            (Defect("scratch", Box(*map(float, s.defects[0].box))),), note="model missed it")
        else:
            review = Review(ReviewKind.ACCEPT, Verdict.NORMAL)
        store.save_review(img.id, review)
        if i in golden:
            store.add_golden_sample(img.id, "Metal Washer")  # spelt as the inspector typed it
        paths.append(str(path))
    return store, paths


def _image_slots(row) -> int:
    return sum(part["type"] == "image" for m in row["prompt"] for part in m["content"] if isinstance(part, dict))


def test_flag_rows_carry_their_objects_golden_samples(tmp_path, tiny_model_dir):
    store, paths = _store(tmp_path)
    geometry = read_model_geometry(tiny_model_dir)
    data = collect(store, replay_ratio=0.5, holdout_fraction=0.2, references=1)
    items = data.flagged + data.replay + data.holdout
    for item in items:  # the first golden sample, or the next one for the first golden sample itself
        assert item.references == ((paths[4],) if item.image.path == paths[3] else (paths[3],))
    assert references_of(store, data.flagged[0].image, 2) == (paths[3], paths[4])
    rows, skipped = training_rows(data, geometry)
    assert not skipped and len(rows) == len(data.flagged) + len(data.replay)
    flagged = rows[0]
    assert flagged["anomalous"] and len(flagged["images"]) == 2 == _image_slots(flagged)
    golden = np.asarray(flagged["images"][0].convert("RGB"))
    from PIL import Image

    assert np.array_equal(golden, np.asarray(Image.open(paths[3]).convert("RGB")))  # the reference comes first
    assert flagged["images"][1].size == SIZE  # the query last: its boxes stay in its own frame
    text = " ".join(p.get("text", "") for m in flagged["prompt"] for p in m["content"] if isinstance(p, dict))
    assert "reference" in text.lower()
    # no golden samples asked for: the rows are the single-image rows they were
    plain, _ = training_rows(collect(store, references=0), geometry)
    assert all(len(r["images"]) == 1 == _image_slots(r) for r in plain)
    assert plain[0]["boxes"] == flagged["boxes"]


def test_a_deleted_golden_sample_is_one_skipped_line_and_rows_go_without_it(tmp_path, tiny_model_dir):
    import os

    store, paths = _store(tmp_path, golden=(3,))
    os.remove(paths[3])
    data = collect(store, references=1)
    rows, skipped = training_rows(data, read_model_geometry(tiny_model_dir))
    golden_lines = [s for s in skipped if s.startswith("golden sample")]
    assert len(golden_lines) == 1 and paths[3] in golden_lines[0] and "without it" in golden_lines[0]
    assert rows and all(len(r["images"]) == 1 == _image_slots(r) for r in rows)  # nothing else lost
    assert len(rows) == len([i for i in data.flagged + data.replay if i.image.path != paths[3]])


def test_side_by_side_rows_are_one_composite_with_boxes_in_the_right_half(tiny_model_dir):
    geometry = dataclasses.replace(read_model_geometry(tiny_model_dir), references=ReferenceMode.SIDE_BY_SIDE)
    sample = generate_sample(np.random.default_rng([4, 2]), defect="scratch", size=(150, 120), reference=True)
    row = grpo_row_from_sample(sample, geometry)
    assert len(row["images"]) == 1 == _image_slots(row)
    assert row["images"][0].size == (2 * HALF_SIZE[0], HALF_SIZE[1])
    frame_w, _ = row["frame_size"]
    x1, _, x2, _ = row["boxes"][0]
    assert frame_w / 2 <= x1 < x2 <= frame_w  # the query is the right half
    separate = grpo_row_from_sample(sample, read_model_geometry(tiny_model_dir))
    assert len(separate["images"]) == 2 == _image_slots(separate)  # the rendered golden sample, then the query
    alone = grpo_row_from_sample(dataclasses.replace(sample, reference=None), geometry)
    assert len(alone["images"]) == 1 and alone["images"][0].size == sample.image.size


@pytest.mark.parametrize("mode", [ReferenceMode.IMAGES, ReferenceMode.SIDE_BY_SIDE])
def test_a_real_grpo_step_trains_on_rows_with_golden_samples(mode, tiny_model_dir, tmp_path):
    """trl's GRPOTrainer with the real processor: each prompt's image slots take the row's images."""
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    if mode is ReferenceMode.SIDE_BY_SIDE:
        (model / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels",
                                                      "references": "side_by_side",
                                                      "max_pixels": 2 * HALF_SIZE[0] * HALF_SIZE[1]}))
    geometry = read_model_geometry(model)
    assert geometry.references is mode
    rows = [grpo_row_from_sample(generate_sample(np.random.default_rng([6, i]), size=SIZE, reference=True), geometry)
            for i in range(4)]
    assert {len(r["images"]) for r in rows} == {2 if mode is ReferenceMode.IMAGES else 1}
    events = []
    out = tmp_path / "adapter"
    recipe = GRPORecipe.cpu_tiny(max_steps=1, batch_size=4, max_completion_length=6)
    summary = run_grpo(model, rows, recipe, out, emit=events.append)
    assert summary["steps"] == 1 and (out / "adapter_model.safetensors").is_file()
    assert [e.kind for e in events][-1] == "saved"


def test_the_apps_reference_setting_reaches_the_training_run(tmp_path, tiny_model_dir):
    """"Improve model" trains on rows beside as many golden samples as inspection uses (the setting)."""
    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.adapter_versions import sync_active_version
    from lriad_desktop.ui.improve.training_process import plan_improvement
    from training.recipes.grpo import resolve_recipe

    store, _ = _store(tmp_path)
    settings = Settings(model_dir=str(tiny_model_dir), reference_count=2)
    parent = sync_active_version(store, tiny_model_dir, None)
    command = list(plan_improvement(store, settings, parent, recipe={"preset": "cpu_tiny", "max_steps": 1}).command)
    recipe = resolve_recipe(recipe_json=command[command.index("--recipe-json") + 1])
    assert recipe.references == 2 and recipe.max_steps == 1
    assert resolve_recipe("cpu_tiny", recipe_json='{"references": 0}').references == 0
    assert GRPORecipe.cpu_tiny().references == 1  # the setting's default
