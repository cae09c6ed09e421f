"""One review model: accept, verdict flag, label correction and box correction, decided against the finding;
the store migration that lets the reviews table hold them; agreement of a newer finding with a review;
one label vocabulary; box corrections in training data."""

import sqlite3

import pytest
from PIL import Image

from lriad_desktop.core.store import review as rv
from lriad_desktop.core.defect_kinds import canonical_label, display_name
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.migrations import MIGRATIONS, SCHEMA_VERSION, apply_migration
from lriad_desktop.core.store.review import ImageStatus, Review, ReviewKind, image_status, verdict_in_force
from lriad_desktop.core.store.review_store import ReviewStore, StoreError

SCRATCH = Defect("scratch", Box(10, 10, 30, 20))


def _model(*defects, verdict=Verdict.ANOMALOUS):
    return Finding(verdict, tuple(defects), ("look",), "raw", "m1", image_size=(64, 48))


def _kind(finding, edit):
    base = rv.starting_point(finding, None, 1)
    return rv.classified(edit(base), finding).kind


def test_the_kind_says_what_the_inspector_corrected():
    f = _model(SCRATCH)
    assert _kind(f, lambda r: r) is ReviewKind.ACCEPT
    assert _kind(f, rv.with_verdict_toggled) is ReviewKind.FLAG
    assert _kind(f, lambda r: rv.with_defect_label(r, 0, "crack")) is ReviewKind.LABEL
    assert _kind(f, lambda r: rv.with_defect_box(r, 0, Box(40, 5, 60, 30))) is ReviewKind.BOX
    assert _kind(f, lambda r: rv.with_defect_added(r, Defect("scratch", Box(1, 1, 5, 5)))) is ReviewKind.BOX
    assert _kind(f, lambda r: rv.with_defect_added(r, Defect("", Box(1, 1, 5, 5)))) is ReviewKind.BOX  # no type yet
    assert _kind(f, lambda r: rv.with_defect_added(r, Defect("hole", Box(1, 1, 5, 5)))) is ReviewKind.LABEL
    two = _model(SCRATCH, Defect("scratch", Box(40, 30, 50, 40)))
    assert _kind(two, lambda r: rv.with_defect_removed(r, 1)) is ReviewKind.BOX
    # relabelled and moved: the type is the bigger disagreement
    assert _kind(f, lambda r: rv.with_defect_box(rv.with_defect_label(r, 0, "crack"), 0, Box(0, 0, 9, 9))) \
        is ReviewKind.LABEL
    # moved and moved back: an acceptance again, whatever keys were pressed
    moved = rv.with_defect_box(rv.starting_point(f, None), 0, Box(0, 0, 9, 9))
    assert rv.classified(rv.with_defect_box(moved, 0, SCRATCH.box), f).kind is ReviewKind.ACCEPT
    # a stored box is rounded to 0.01 px: still the model's box
    assert _kind(_model(Defect("scratch", Box(10.004, 10, 30, 20.003))), lambda r: r) is ReviewKind.ACCEPT
    # the model's spelling of a label is not a correction
    assert _kind(_model(Defect("missing_part", SCRATCH.box)),
                 lambda r: rv.with_defect_label(r, 0, "missing part")) is ReviewKind.ACCEPT
    normal = _model(verdict=Verdict.NORMAL)
    assert _kind(normal, lambda r: rv.with_defect_added(r, Defect("", Box(1, 1, 5, 5)))) is ReviewKind.FLAG
    assert _kind(None, lambda r: rv.with_verdict(r, Verdict.NORMAL)) is ReviewKind.FLAG  # nothing to agree with
    assert _kind(Finding(Verdict.UNPARSED), lambda r: rv.with_verdict(r, Verdict.NORMAL)) is ReviewKind.FLAG
    with pytest.raises(ValueError, match="defect type"):
        rv.with_defect_label(rv.starting_point(f, None), 0, "  ")


def test_status_and_verdict_in_force_follow_the_review():
    f = _model(SCRATCH)
    base = rv.starting_point(f, None)
    assert image_status(f, rv.classified(rv.with_defect_label(base, 0, "crack"), f)) is ImageStatus.CORRECTED
    assert image_status(f, rv.classified(rv.with_defect_box(base, 0, Box(0, 0, 3, 3)), f)) is ImageStatus.CORRECTED
    flag = rv.classified(rv.with_verdict_toggled(base), f)
    assert image_status(f, flag) is ImageStatus.FLAGGED and verdict_in_force(f, flag) is Verdict.NORMAL
    assert verdict_in_force(f, None) is Verdict.ANOMALOUS and verdict_in_force(None, None) is None
    assert ImageStatus.ACCEPTED_NORMAL.reviewed and not ImageStatus.DEFECT.reviewed
    assert Review(ReviewKind.BOX, Verdict.ANOMALOUS, (Defect("", None),)).unlabelled == 1


def test_agreement_of_a_newer_finding_with_the_review():
    review = Review(ReviewKind.BOX, Verdict.ANOMALOUS, (Defect("scratch", Box(40, 5, 60, 30)),))
    assert rv.agreement(review, _model(Defect("scratch", Box(41, 6, 60, 30)))).agrees
    off = rv.agreement(review, _model(SCRATCH))
    assert not off.agrees and off.why.startswith("box off")
    assert rv.agreement(review, _model(Defect("scratch", None))).why == "no box there"
    assert rv.agreement(review, _model(Defect("crack", Box(40, 5, 60, 30)))).why == "names crack, not scratch"
    assert rv.agreement(review, _model(verdict=Verdict.NORMAL)).why == "says normal"
    assert rv.agreement(review, Finding(Verdict.UNPARSED)).why == "no readable answer"
    assert rv.agreement(Review(ReviewKind.FLAG, Verdict.NORMAL), _model(verdict=Verdict.NORMAL)).agrees


def test_one_label_vocabulary():
    assert {canonical_label(x) for x in ("missing part", "missing_part", "Missing-Part", " missing  part ")} == {
        "missing_part"}
    assert display_name("missing_part") == "missing part" and canonical_label("stain") == "contamination"
    assert canonical_label("Burr ") == "burr" and canonical_label("") == ""
    accepted = rv.acceptance(_model(Defect("Missing Part", None)))
    assert accepted.defects[0].label == "missing_part"


REVIEW_KINDS_STEP = 5  # MIGRATIONS[5] widens the review kinds (schema 5 -> 6)


def _v3_store(path):
    """A store as the previous version left it: the schema before the review kinds, with a row in every table."""
    db = sqlite3.connect(path)
    for step in range(REVIEW_KINDS_STEP):
        apply_migration(db, step)
    db.execute(f"PRAGMA user_version = {REVIEW_KINDS_STEP}")
    db.execute("INSERT INTO images (id, sha256, path, object_name, added_at) VALUES (1, 'a', '/a.png', 'nut', 't')")
    db.execute("INSERT INTO images (id, sha256, path, object_name, added_at) VALUES (2, 'b', '/b.png', '', 't')")
    db.execute("INSERT INTO inspections (id, image_id, model_version, verdict, finding_json, created_at) "
               "VALUES (5, 1, 'm1', 'anomalous', ?, 't1')", (_model(SCRATCH).to_json(),))
    rows = [(3, 1, 5, "accept", "anomalous", '[{"label": "scratch", "box": [10, 10, 30, 20]}]', "", "ann", "t2"),
            (7, 1, 5, "flag", "normal", "[]", "not a scratch", "bob", "t3"),
            (8, 2, None, "flag", "anomalous", '[{"label": "missing part", "box": null}]', "", "ann", "t4")]
    db.executemany("INSERT INTO reviews (id, image_id, inspection_id, kind, verdict, defects_json, note, reviewer, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("INSERT INTO object_names (scope, name, updated_at) VALUES ('/parts', 'washer', 't')")
    db.execute("INSERT INTO model_versions (id, name, base_path, created_at, active) VALUES (1, 'base', '/m', 't', 1)")
    db.execute("INSERT INTO training_runs (id, status, started_at) VALUES (1, 'done', 't')")
    db.commit()
    db.close()
    return rows


def _dump(path):
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    dump = {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    db.close()
    return dump


def test_a_store_of_the_previous_version_migrates_keeping_every_row(tmp_path):
    path = tmp_path / "v3.sqlite3"
    rows = _v3_store(path)
    before = _dump(path)
    assert MIGRATIONS[REVIEW_KINDS_STEP].__name__ == "_v6_review_kinds" and SCHEMA_VERSION >= REVIEW_KINDS_STEP + 1
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert [r.id for r in s.review_history(1)] == [3, 7] and s.current_review(2).id == 8
        assert s.current_review(1).review.note == "not a scratch" and s.current_review(1).reviewer == "bob"
        # the new kinds can be written now, and the table still refuses anything else
        s.save_review(2, Review(ReviewKind.BOX, Verdict.ANOMALOUS, (Defect("hole", Box(1, 1, 4, 4)),), "", None))
        s.save_review(2, Review(ReviewKind.LABEL, Verdict.ANOMALOUS, (Defect("hole", None),), "", None))
        with pytest.raises(StoreError, match="CHECK constraint"):  # every sqlite error is a StoreError
            s._db.execute("INSERT INTO reviews (image_id, kind, verdict, reviewer, created_at) "
                          "VALUES (1, 'maybe', 'normal', 'x', 't')")
        assert s.counts().corrected == 1 and s.counts().to_learn == 2
    after = _dump(path)
    assert after["reviews"][:3] == rows  # every old review, ids and all, as it was
    for table in ("images", "inspections", "object_names", "model_versions", "training_runs", "golden_samples",
                  "object_thresholds"):
        assert [r[:len(before[table][0])] for r in after[table]] == before[table] if before[table] else \
            after[table] == before[table]  # every old column as it was (V7 adds the version status)
    db = sqlite3.connect(path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "reviews_by_image" in indexes and db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()


def test_a_box_correction_trains_the_box_under_the_verdict_the_model_gave(tmp_path, tiny_model_dir):
    from lriad_desktop.core.inspection.coordinates import read_model_geometry
    from training.recipes.flags import collect, training_rows

    with ReviewStore.open(tmp_path / "r.sqlite3") as s:
        Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "a.png")
        img = s.add_image(tmp_path / "a.png", "washer")
        f = _model(SCRATCH)
        insp = s.record_inspection(img.id, f)
        moved = rv.classified(rv.with_defect_box(rv.starting_point(f, None, insp.id), 0, Box(40, 5, 60, 30)), f)
        assert moved.kind is ReviewKind.BOX
        s.save_review(img.id, moved)
        data = collect(s)
        assert [item.kind for item in data.flagged] == [ReviewKind.BOX]
        assert data.summary()["box_corrections"] == 1 and data.summary()["verdict_flags"] == 0
        (row,), _ = training_rows(data, read_model_geometry(tiny_model_dir))
    assert row["anomalous"] is True and row["defect_labels"] == ["scratch"] and row["defect_class"] == "scratch"
    assert len(row["boxes"]) == 1 and row["boxes"][0][0] > row["boxes"][0][2] / 2  # the corrected box, right half
