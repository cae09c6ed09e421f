"""What "Improve model" keeps and teaches: replay rows carry the accepted truth (labels and boxes), and a
flagged label the model never says gets a supervised warm start before GRPO (real store, real tiny model)."""

import json

import numpy as np

from lriad_desktop.core.inspection.coordinates import read_model_geometry
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.inspection.parsing import parse_completion
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.training_runs.recovery import EVAL_RECORD
from lriad_desktop.core.store.review_store import ReviewStore
from training.recipes.flags import balance_verdicts, collect, training_rows
from training.recipes.grpo import GRPORecipe
from training.recipes.improve import improve
from training.synthetic_data.samples import generate_sample
from training.recipes.warm_start import never_named, target_completion


def _store(tmp_path, flagged=3, accepted_defects=("hole", "crack") * 3, good=4):
    folder = tmp_path / "imgs"
    folder.mkdir()
    store = ReviewStore.open(tmp_path / "reviews.sqlite3")
    plan = ([("scratch", ReviewKind.FLAG)] * flagged + [(lab, ReviewKind.ACCEPT) for lab in accepted_defects]
            + [(False, ReviewKind.ACCEPT)] * good)
    for i, (label, kind) in enumerate(plan):
        s = generate_sample(np.random.default_rng([23, i]), defect=label, size=(96, 80))
        path = folder / f"{i:03d}.png"
        s.image.save(path)
        img = store.add_image(path, "metal washer")
        defects = tuple(Defect(d.label, Box(*map(float, d.box))) for d in s.defects)
        store.save_review(img.id, Review(kind, Verdict.ANOMALOUS if defects else Verdict.NORMAL, defects))
    return store


def test_replay_rows_carry_the_accepted_labels_and_boxes(tmp_path, tiny_model_dir):
    store = _store(tmp_path)
    data = collect(store, replay_ratio=2.0, holdout_fraction=0.25)
    replayed = [item.defect_class for item in data.replay]
    assert replayed[:2] == ["crack", "hole"]  # every accepted class in turn, defect types first
    assert {i.image.id for i in data.replay}.isdisjoint(i.image.id for i in data.holdout)
    assert {"crack", "hole", "good"} <= {i.defect_class for i in data.holdout}  # the held-out slice too
    rows, _ = training_rows(data, read_model_geometry(tiny_model_dir))
    replay_rows = [r for r in rows if r["source"] == "replay"]
    assert len(replay_rows) == len(data.replay) and len(rows) == len(data.flagged) + len(data.replay)
    for row, item in zip(replay_rows, data.replay):
        if item.anomalous:
            assert row["anomalous"] and set(row["defect_labels"]) == {item.defect_class}
            assert len(row["boxes"]) == len(item.defects) >= 1 and row["boxes"][0][2] > row["boxes"][0][0]
            w, h = row["frame_size"]
            assert all(0 <= v <= max(w, h) for v in row["boxes"][0])
        else:
            assert not row["anomalous"] and row["boxes"] == [] and row["defect_labels"] == []
    # the warm start's target for a replayed defect is the accepted answer, in the grammar
    defect_row = next(r for r in replay_rows if r["anomalous"])
    parsed = parse_completion(target_completion(defect_row, "metal washer", np.random.default_rng(0)))
    assert parsed.ok and parsed.anomaly and [d.label for d in parsed.defects] == defect_row["defect_labels"]
    assert [round(v) for v in parsed.defects[0].box] == [round(v) for v in defect_row["boxes"][0]]


def test_normal_rows_are_repeated_to_balance_the_verdicts(tmp_path, tiny_model_dir):
    store = _store(tmp_path, flagged=4, accepted_defects=("hole", "crack") * 2, good=2)
    data = collect(store, replay_ratio=2.0, holdout_fraction=0.0)
    rows, _ = training_rows(data, read_model_geometry(tiny_model_dir))
    normal = [r for r in rows if not r["anomalous"]]
    anomalous = [r for r in rows if r["anomalous"]]
    assert len(normal) == 2 and len(anomalous) == 8  # flags are mostly defects
    balanced = balance_verdicts(rows)
    assert [r["anomalous"] for r in balanced] == [True, False] * 8  # interleaved, one normal after each defect
    assert [r for r in balanced if r["anomalous"]] == anomalous  # every defect row once, in order
    assert {id(r) for r in balanced if not r["anomalous"]} == {id(r) for r in normal}  # only the real normals
    assert balance_verdicts(anomalous) == anomalous  # no normal rows: nothing to repeat
    assert balance_verdicts(normal + anomalous[:1]) == normal + anomalous[:1]  # already balanced: as is


def test_never_named_reads_the_before_evaluation():
    before = {"all": {"label_accuracy": 0.0, "n": 5}, "scratch": {"label_accuracy": 0.0, "n": 3},
              "hole": {"label_accuracy": 0.5, "n": 2}, "good": {"label_accuracy": None, "n": 1}}
    assert never_named(before) == ["scratch"]
    assert never_named({}) == []


def test_a_label_the_model_never_says_gets_a_warm_start_and_a_version(tmp_path, tiny_model_dir):
    """The random tiny model names no label: flags of "scratch" start with SFT steps, then GRPO continues the
    warm-started adapter, and the run registers a version whose adapter loads and answers."""
    from lriad_desktop.core.backends.engine import Inspector

    store = _store(tmp_path, flagged=4, accepted_defects=("hole",), good=3)
    db = store.path
    store.close()
    out = tmp_path / "adapters" / "v2"
    recipe = GRPORecipe.cpu_tiny(max_steps=1, batch_size=4, max_completion_length=8, warm_start_steps=2,
                                replay_ratio=0.5)  # 2 of the 4 accepted images replayed
    events = []
    assert improve(db, tiny_model_dir, out, recipe=recipe, emit=events.append) == 0
    record = json.loads((out / EVAL_RECORD).read_text())
    warm = record["warm_start"]
    # 4 flags + a replayed hole, and the replayed good part repeated to match them (balance_verdicts)
    assert warm["labels"] == ["scratch"] and warm["steps"] == 2 and warm["rows"] == 5 + 5
    assert warm["first_loss"] > 0
    assert not [p for p in out.parent.iterdir() if "warm" in p.name]  # the warm-start folder is gone
    with ReviewStore.open(db) as store:
        (version,) = store.model_versions()
        assert version.adapter_path == str(out) and version.metrics["warm_start"]["labels"] == ["scratch"]
    insp = Inspector(tiny_model_dir, out, device="cpu", max_new_tokens=8)
    try:
        assert len(insp.inspect_batch([generate_sample(np.random.default_rng(1), size=(96, 80)).image])) == 1
    finally:
        insp.close()
    # off in the recipe: no warm start
    recipe_off = GRPORecipe.cpu_tiny(max_steps=1, batch_size=4, max_completion_length=8, warm_start_steps=0)
    assert improve(db, tiny_model_dir, tmp_path / "adapters" / "v3", recipe=recipe_off, emit=events.append) == 0
    assert json.loads((tmp_path / "adapters" / "v3" / EVAL_RECORD).read_text())["warm_start"] == {}
