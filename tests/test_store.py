"""The review store on real SQLite files: schema and migrations, WAL, durability, bad folders; settings; review edits."""

import json
import os
import sqlite3
import sys

import pytest
from PIL import Image

from lriad_desktop.core.store import review as rv
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.migrations import MIGRATIONS, SCHEMA_VERSION, apply_migration
from lriad_desktop.core.store.review import ImageStatus, Review, ReviewHistory, ReviewKind, image_status
from lriad_desktop.core.settings import Settings, SettingsError, load_settings, save_settings
from lriad_desktop.core.store.review_store import ReviewStore, StoreError, object_name_in

from full_disk import small_disk  # noqa: F401 - the fixture


def _image(path, colour=(90, 90, 90)):
    Image.new("RGB", (64, 48), colour).save(path)
    return path


def _finding(verdict=Verdict.ANOMALOUS, box=Box(10, 10, 30, 20)):
    defects = (Defect("scratch", box),) if verdict is Verdict.ANOMALOUS else ()
    return Finding(verdict, defects, ("look", "decide"), "<think>…</think>", "m1", image_size=(64, 48))


@pytest.fixture
def store(tmp_path):
    with ReviewStore.open(tmp_path / "r.sqlite3") as s:
        yield s


def test_default_location_schema_and_wal(tmp_path, monkeypatch):
    monkeypatch.setenv("LRIAD_DATA_DIR", str(tmp_path / "data"))
    with ReviewStore.open() as s:
        assert s.path == tmp_path / "data" / "reviews.sqlite3"
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert s.journal_mode.lower() == "wal"
    raw = sqlite3.connect(tmp_path / "data" / "reviews.sqlite3")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "inspections", "reviews", "object_names", "model_versions", "training_runs"} <= tables


def test_migration_from_version_1_keeps_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    apply_migration(db, 0)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO images (sha256, path, object_name, added_at) VALUES ('abc', '/x.png', 'nut', 't')")
    db.execute("INSERT INTO reviews (image_id, kind, verdict, defects_json, note, reviewer, created_at) "
               "VALUES (1, 'flag', 'normal', '[]', 'old note', 'ann', 't')")
    db.commit()
    db.close()
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.current_review(1).review.note == "old note"
        s.set_object_name(tmp_path, "washer")  # a table added by migration 2
        assert s.add_model_version("base", "/m").id == 1  # added by migration 3


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer version"):
        ReviewStore.open(path)


def test_flag_survives_a_new_connection(tmp_path):
    img = _image(tmp_path / "a.png")
    path = tmp_path / "r.sqlite3"
    s1 = ReviewStore.open(path)
    rec = s1.add_image(img, "nut")
    insp = s1.record_inspection(rec.id, _finding())
    flag = Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("dent", Box(1, 2, 30, 40)),), "box was off", insp.id)
    s1.save_review(rec.id, flag)
    # a second connection sees it while the first is still open (no close, no checkpoint: as after a crash)
    with ReviewStore.open(path) as s2:
        current = s2.current_review(rec.id)
        assert current.review == flag and current.reviewer
        assert [i.id for i in s2.flagged_images()] == [rec.id]
        assert s2.latest_finding(rec.id).defects[0].box == Box(10, 10, 30, 20)
    s1.close()


def test_images_reviews_history_counts(store, tmp_path):
    a = store.add_image(_image(tmp_path / "a.png"), "nut")
    assert store.add_image(tmp_path / "a.png").id == a.id  # same content, same path: same record
    b = store.add_image(_image(tmp_path / "b.png", (1, 2, 3)))
    store.record_inspection(a.id, _finding())
    store.record_inspection(b.id, _finding(Verdict.NORMAL))
    store.save_review(a.id, Review(ReviewKind.FLAG, Verdict.NORMAL))
    last = store.save_review(a.id, Review(ReviewKind.ACCEPT, Verdict.ANOMALOUS, _finding().defects))
    store.save_review(b.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("hole", None),)))
    assert [r.review.kind for r in store.review_history(a.id)] == [ReviewKind.FLAG, ReviewKind.ACCEPT]
    assert [i.id for i in store.accepted_images()] == [a.id]
    assert [i.id for i in store.flagged_images()] == [b.id]
    counts = store.counts()
    assert (counts.images, counts.inspected, counts.accepted, counts.flagged, counts.reviews) == (2, 2, 1, 1, 3)
    assert store.data_revision() == last.id + 1
    states = store.lookup_paths([a.path, b.path, str(tmp_path / "unknown.png")])
    assert set(states) == {a.path, b.path} and states[a.path].review.id == last.id
    assert store.known_labels()[:2] == ["scratch", "hole"]
    assert len(store.reviewed_states()) == 2


def test_changed_content_is_a_new_image(store, tmp_path):
    path = _image(tmp_path / "cam.png")
    first = store.add_image(path)
    _image(path, (200, 0, 0))
    second = store.add_image(path)
    assert second.id != first.id and second.sha256 != first.sha256
    assert store.lookup_paths([second.path])[second.path].image.id == second.id


def test_object_names_nearest_scope_wins(store, tmp_path):
    (tmp_path / "line1" / "cam2").mkdir(parents=True)
    img = tmp_path / "line1" / "cam2" / "p.png"
    store.set_object_name(tmp_path / "line1", "metal nut")
    assert store.object_name_for(img) == "metal nut"
    store.set_object_name(img, "screw")
    assert store.object_name_for(img) == "screw"
    store.set_object_name(img, "")
    assert store.object_name_for(img) == "metal nut"
    assert object_name_in({}, img) is None


def test_model_versions_and_training_runs(store):
    base = store.add_model_version("lriad-tiny", "/models/tiny")
    v1 = store.add_model_version("v1", "/models/tiny", "/data/adapters/v1", parent_id=base.id, data_revision=7,
                                 metrics={"accuracy": 0.8})
    store.activate_model_version(v1.id)
    assert store.active_model_version().id == v1.id
    store.activate_model_version(base.id)
    assert [m.active for m in store.model_versions()] == [True, False]
    with pytest.raises(StoreError):
        store.activate_model_version(999)
    assert store.active_model_version().id == base.id  # the failed activation changed nothing
    run = store.add_training_run(base.id, 7, {"steps": 10})
    store.finish_training_run(run.id, "done", v1.id, {"reward": 1.5})
    (done,) = store.training_runs()
    assert done.status == "done" and done.result_version_id == v1.id and done.metrics == {"reward": 1.5}


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="permissions don't bind root")
def test_read_only_and_unusable_data_dirs(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="read-only"):
            ReviewStore.open(ro / "r.sqlite3")
        with pytest.raises(StoreError, match="Can't create the data folder"):
            ReviewStore.open(ro / "sub" / "r.sqlite3")
    finally:
        ro.chmod(0o700)


def test_read_only_folder_message_even_as_root(tmp_path, monkeypatch):
    import lriad_desktop.core.store.review_store as store_module

    monkeypatch.setattr(store_module.os, "access", lambda path, mode: False)
    with pytest.raises(StoreError, match="is read-only: reviews can't be saved"):
        ReviewStore.open(tmp_path / "r.sqlite3")


def test_missing_parent_is_created_and_a_file_in_the_way_is_an_error(tmp_path):
    with ReviewStore.open(tmp_path / "new" / "deeper" / "r.sqlite3") as s:
        assert s.schema_version == SCHEMA_VERSION
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="Can't create the data folder"):
        ReviewStore.open(tmp_path / "file" / "r.sqlite3")
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="can't be opened"):
        ReviewStore.open(tmp_path / "junk.sqlite3")


def test_review_rules_and_status():
    with pytest.raises(ValueError):
        Review(ReviewKind.FLAG, Verdict.NORMAL, (Defect("x", None),))
    with pytest.raises(ValueError):
        Review(ReviewKind.ACCEPT, Verdict.UNPARSED)
    f = _finding()
    assert image_status(None, None) is ImageStatus.NOT_INSPECTED
    assert image_status(f, None) is ImageStatus.DEFECT
    assert image_status(_finding(Verdict.NORMAL), None) is ImageStatus.NORMAL
    assert image_status(Finding(Verdict.UNPARSED), None) is ImageStatus.UNPARSED
    assert image_status(f, None, "truncated") is ImageStatus.ERROR
    assert image_status(f, rv.acceptance(f)) is ImageStatus.ACCEPTED_DEFECTIVE
    assert image_status(_finding(Verdict.NORMAL), rv.acceptance(_finding(Verdict.NORMAL))) is ImageStatus.ACCEPTED_NORMAL
    assert rv.acceptance(Finding(Verdict.UNPARSED)) is None
    flipped = rv.classified(rv.with_verdict_toggled(rv.starting_point(f, None, 3)), f)
    assert flipped.kind is ReviewKind.FLAG and flipped.verdict is Verdict.NORMAL and flipped.defects == ()
    assert flipped.inspection_id == 3 and image_status(f, flipped) is ImageStatus.FLAGGED
    drawn = rv.with_defect_added(flipped, Defect("dent", Box(0, 0, 5, 5)))
    assert drawn.verdict is Verdict.ANOMALOUS
    relabelled = rv.with_defect_label(drawn, 0, " crack ")
    assert relabelled.defects[0] == Defect("crack", Box(0, 0, 5, 5))
    assert rv.with_defect_box(relabelled, 0, Box(1, 1, 2, 2)).defects[0].box == Box(1, 1, 2, 2)
    assert rv.with_defect_removed(relabelled, 0).defects == ()
    noted = rv.with_note(rv.acceptance(f), "ok")
    assert noted.kind is ReviewKind.ACCEPT and noted.note == "ok"


def test_history_undo_deletes_the_row_and_redo_writes_it_again(store, tmp_path):
    img = store.add_image(_image(tmp_path / "a.png"))
    history = ReviewHistory(store)
    seen = []
    history.on_change.append(seen.append)
    first = rv.acceptance(_finding())
    history.apply(img.id, first, "Accept")
    flag = rv.classified(rv.with_verdict_toggled(first), _finding())
    history.apply(img.id, flag, "Flag verdict")
    assert store.current_review(img.id).review == flag
    assert history.undo().text == "Flag verdict"
    assert store.current_review(img.id).review == first and len(store.review_history(img.id)) == 1
    history.undo()
    assert store.current_review(img.id) is None and history.undo() is None
    history.redo()
    history.redo()
    assert store.current_review(img.id).review == flag and not history.can_redo
    assert seen == [img.id] * 6


def test_settings_roundtrip_atomic_and_tolerant(tmp_path):
    path = tmp_path / "settings.json"
    s = Settings().with_changes(batch_size=8, theme="dark").with_recent_folder("/a").with_recent_folder("/b")
    save_settings(s, path)
    loaded, notes = load_settings(path)
    assert loaded == s and notes == [] and loaded.recent_folders == ("/b", "/a")
    assert not list(tmp_path.glob(".settings*"))  # no temp file left behind
    data = json.loads(path.read_text())
    data.update(batch_size="many", max_new_tokens=10**9, theme="neon", unknown=1)
    path.write_text(json.dumps(data))
    loaded, notes = load_settings(path)
    assert (loaded.batch_size, loaded.max_new_tokens, loaded.theme) == (4, 256, "system")
    assert len(notes) == 3
    path.write_text("{broken")
    assert load_settings(path)[0] == Settings()
    with pytest.raises(SettingsError):
        Settings().with_changes(device="tpu")
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(SettingsError, match="Can't save"):
        save_settings(Settings(), tmp_path / "blocker" / "settings.json")


def test_settings_on_a_full_disk_keep_the_last_good_file(small_disk):
    path = small_disk.root / "settings.json"
    save_settings(Settings(batch_size=2), path)
    good = path.read_bytes()
    small_disk.fill()
    with pytest.raises(SettingsError) as failed:
        save_settings(Settings(batch_size=8, recent_folders=("/a" * 3000,)), path)
    assert str(failed.value) == f"Can't save the settings: Not enough disk space to write {path}"
    assert path.read_bytes() == good and sorted(p.name for p in small_disk.root.iterdir()) == [".filler",
                                                                                              "settings.json"]


def test_migration_to_scores_and_thresholds_keeps_every_row(tmp_path):
    """A store of the schema before scores, with rows in every table, upgrades with all of them intact."""
    mine = next(i for i, m in enumerate(MIGRATIONS) if isinstance(m, str) and "object_thresholds" in m)
    path = tmp_path / "before-scores.sqlite3"
    db = sqlite3.connect(path)
    for step in range(mine):
        apply_migration(db, step)
    db.execute(f"PRAGMA user_version = {mine}")
    old_finding = json.dumps({"verdict": "anomalous", "defects": [{"label": "scratch", "box": [1, 2, 3, 4]}],
                              "reasoning": ["a"], "raw_text": "t", "model_version": "m1"})
    db.executescript(f"""
        INSERT INTO images (sha256, path, object_name, added_at) VALUES ('a', '/a.png', 'nut', 't1');
        INSERT INTO images (sha256, path, object_name, added_at) VALUES ('b', '/b.png', '', 't2');
        INSERT INTO inspections (image_id, model_version, verdict, finding_json, created_at)
            VALUES (1, 'm1', 'anomalous', '{old_finding}', 't3');
        INSERT INTO reviews (image_id, inspection_id, kind, verdict, defects_json, note, reviewer, created_at)
            VALUES (1, 1, 'accept', 'anomalous', '[]', 'ok', 'ann', 't4');
        INSERT INTO reviews (image_id, kind, verdict, defects_json, note, reviewer, created_at)
            VALUES (2, 'flag', 'normal', '[]', '', 'bob', 't5');
        INSERT INTO object_names (scope, name, updated_at) VALUES ('/', 'nut', 't6');
        INSERT INTO model_versions (name, base_path, created_at, active) VALUES ('base', '/m', 't7', 1);
        INSERT INTO training_runs (status, started_at) VALUES ('done', 't8');
    """)
    db.commit()
    tables = ("images", "inspections", "reviews", "object_names", "model_versions", "training_runs")
    before = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    db.close()
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        old = s.latest_finding(1)
        assert old.verdict is Verdict.ANOMALOUS and old.anomaly_score is None and old.defects[0].label == "scratch"
        assert s.threshold_for("nut") == 0.5 and s.thresholds() == {}
        s.set_threshold("nut", 0.3)
        assert s.threshold_for("nut") == 0.3 and s.threshold_for("other") == 0.5
        with pytest.raises(StoreError, match="between 0 and 1"):
            s.set_threshold("nut", 1.5)
        s.set_threshold("nut", None)
        assert s.thresholds() == {}
        scored = Finding(Verdict.NORMAL, anomaly_score=0.125, score_source="verdict_token")
        s.record_inspection(2, scored)
    db = sqlite3.connect(path)
    after = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    assert after["inspections"][0] == before["inspections"][0] + (None,)  # the new column, empty for old rows
    assert after["inspections"][1][-1] == 0.125
    # every old column of every other row as it was (later steps may add columns: V7's version status)
    assert {t: [r[:len(before[t][0])] for r in rows] for t, rows in after.items() if t != "inspections"} == \
        {t: rows for t, rows in before.items() if t != "inspections"}
    db.close()
