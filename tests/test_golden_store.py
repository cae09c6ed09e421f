"""Golden samples in the review store (real SQLite): the migration that adds them keeps every row, they are
filed per object, survive reopening, and the good-images query #21's memory bank reads."""

from __future__ import annotations

import sqlite3

import pytest

from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.store.migrations import MIGRATIONS, SCHEMA_VERSION, apply_migration
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore, StoreError

GOLDEN_STEP = 4  # MIGRATIONS[4] adds golden_samples (schema 4 -> 5)


def _store_at(path, version: int) -> None:
    db = sqlite3.connect(path)
    for step in range(version):
        apply_migration(db, step)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def test_the_golden_sample_migration_keeps_every_row_of_a_store_of_the_previous_version(tmp_path):
    assert "golden_samples" in MIGRATIONS[GOLDEN_STEP]
    path = tmp_path / "v3.sqlite3"
    _store_at(path, GOLDEN_STEP)
    db = sqlite3.connect(path)
    db.executescript("""
        INSERT INTO images (sha256, path, object_name, added_at) VALUES ('a', '/a.png', 'nut', 't'), ('b', '/b.png', '', 't');
        INSERT INTO inspections (image_id, model_version, verdict, finding_json, created_at)
            VALUES (1, 'm', 'normal', '{"verdict": "normal"}', 't');
        INSERT INTO reviews (image_id, inspection_id, kind, verdict, reviewer, created_at)
            VALUES (1, 1, 'accept', 'normal', 'ann', 't'), (2, NULL, 'flag', 'anomalous', 'bo', 't');
        INSERT INTO object_names (scope, name, updated_at) VALUES ('/x', 'washer', 't');
        INSERT INTO model_versions (name, base_path, created_at, active) VALUES ('base', '/m', 't', 1);
        INSERT INTO training_runs (status, started_at) VALUES ('done', 't');
    """)
    db.commit()
    before = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
              for t in ("images", "inspections", "reviews", "object_names", "model_versions", "training_runs")}
    db.close()
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.latest_finding(1).verdict is Verdict.NORMAL  # a finding stored before references existed
        assert s.golden_samples("nut") == []
    db = sqlite3.connect(path)
    for table, rows in before.items():
        now = db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        assert [r[:len(rows[0])] for r in now] == rows, table  # every old column (V7 adds the version status)
    db.close()
    with ReviewStore.open(path) as s:
        assert s.add_golden_sample(1, "nut").path == "/a.png"


def _image(store, tmp_path, name: str, obj: str, verdict: Verdict | None = None):
    path = tmp_path / name
    path.write_bytes(name.encode())
    record = store.add_image(path, obj)
    if verdict is not None:
        store.save_review(record.id, Review(ReviewKind.ACCEPT if verdict is Verdict.NORMAL else ReviewKind.FLAG,
                                            verdict), reviewer="ann")
    return record


def test_golden_samples_are_filed_per_object_and_survive_reopening(tmp_path):
    db = tmp_path / "store.sqlite3"
    with ReviewStore.open(db) as s:
        a = _image(s, tmp_path, "a.png", "metal_nut", Verdict.NORMAL)
        b = _image(s, tmp_path, "b.png", "metal_nut", Verdict.NORMAL)
        c = _image(s, tmp_path, "c.png", "washer", Verdict.NORMAL)
        first = s.add_golden_sample(a.id, "metal_nut", added_by="ann")
        assert s.add_golden_sample(a.id, "Metal nut") == first  # one object, however it is spelled; no duplicate
        s.add_golden_sample(b.id, "metal-nut")
        s.add_golden_sample(c.id, "washer")
        with pytest.raises(StoreError, match="No image 99"):
            s.add_golden_sample(99, "washer")
    with ReviewStore.open(db) as s:
        got = s.golden_samples("metal nut")
        assert [g.path for g in got] == [a.path, b.path] and got[0].added_by == "ann"
        assert [g.object_name for g in s.golden_samples()] == ["metal_nut", "metal-nut", "washer"]
        assert s.golden_objects(a.id) == ["metal_nut"]
        s.remove_golden_sample(got[0].id)
        assert [g.path for g in s.golden_samples("metal_nut")] == [b.path]
        assert s.image(a.id) is not None and s.current_review(a.id) is not None  # the image and review stay


def test_good_images_of_an_object_are_its_golden_samples_then_images_judged_normal(tmp_path):
    with ReviewStore.open(tmp_path / "store.sqlite3") as s:
        normal = _image(s, tmp_path, "n.png", "bottle", Verdict.NORMAL)
        golden = _image(s, tmp_path, "g.png", "bottle", Verdict.NORMAL)
        _image(s, tmp_path, "bad.png", "bottle", Verdict.ANOMALOUS)
        _image(s, tmp_path, "unreviewed.png", "bottle")
        _image(s, tmp_path, "other.png", "cable", Verdict.NORMAL)
        changed = _image(s, tmp_path, "changed.png", "bottle", Verdict.NORMAL)
        s.save_review(changed.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS), reviewer="bo")  # now defective
        s.add_golden_sample(golden.id, "bottle")
        good = s.good_images("Bottle")
        assert [(g.path, g.golden) for g in good] == [(golden.path, True), (normal.path, False)]
