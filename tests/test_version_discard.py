"""A discarded model version (real SQLite): V7 keeps every row of a V6 store, a version whose folder was deleted
before still shows (as deleted, not discarded), discard keeps the row with its status and time, a discarded
version can't be activated until restored, and `lriad versions` shows the state."""

from __future__ import annotations

import sqlite3

import pytest

from lriad_desktop.cli.commands import main
from lriad_desktop.core.store.migrations import MIGRATIONS, SCHEMA_VERSION, apply_migration
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.core.store.adapter_versions import adapters_dir, is_available, rollback_target, version_state

DISCARD_STEP = 6  # MIGRATIONS[6] adds the discarded status (schema 6 -> 7)


def _v6_store(path, base, kept, gone):
    db = sqlite3.connect(path)
    for step in range(DISCARD_STEP):
        apply_migration(db, step)
    db.execute(f"PRAGMA user_version = {DISCARD_STEP}")
    db.executescript(f"""
        INSERT INTO images (sha256, path, object_name, added_at) VALUES ('a', '/a.png', 'nut', 't');
        INSERT INTO reviews (image_id, kind, verdict, reviewer, created_at) VALUES (1, 'box', 'anomalous', 'ann', 't');
        INSERT INTO model_versions (id, name, base_path, created_at, active) VALUES (1, 'base', '{base}', 't0', 1);
        INSERT INTO model_versions (id, name, base_path, adapter_path, parent_id, metrics_json, created_at)
            VALUES (2, 'base-v1', '{base}', '{kept}', 1, '{{"steps": 3}}', 't1');
        INSERT INTO model_versions (id, name, base_path, adapter_path, parent_id, created_at)
            VALUES (3, 'base-v2', '{base}', '{gone}', 2, 't2');
        INSERT INTO training_runs (status, base_version_id, result_version_id, started_at) VALUES ('done', 1, 3, 't');
    """)
    db.commit()
    db.close()


def _rows(path, table):
    db = sqlite3.connect(path)
    rows = db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    db.close()
    return rows


@pytest.fixture
def v6(tmp_path):
    base, kept = tmp_path / "base", tmp_path / "base-v1"
    base.mkdir()
    kept.mkdir()
    path = tmp_path / "v6.sqlite3"
    _v6_store(path, base, kept, tmp_path / "base-v2")  # base-v2's folder was deleted by the app before V7
    return path


def test_v7_keeps_every_row_and_a_version_deleted_before_still_shows(v6):
    assert MIGRATIONS[DISCARD_STEP].strip().startswith("ALTER TABLE model_versions") and SCHEMA_VERSION >= 7
    before = {t: _rows(v6, t) for t in ("images", "reviews", "model_versions", "training_runs")}
    with ReviewStore.open(v6) as s:
        assert s.schema_version == SCHEMA_VERSION
        versions = s.model_versions()
    assert [(v.id, v.name, v.status, v.discarded_at) for v in versions] == [
        (1, "base", "ready", None), (2, "base-v1", "ready", None), (3, "base-v2", "ready", None)]
    assert versions[1].metrics == {"steps": 3} and versions[2].parent_id == 2
    assert [version_state(v) for v in versions] == ["active", "ready", "deleted"]
    for table, rows in before.items():
        after = _rows(v6, table)
        assert [r[:len(rows[0])] for r in after] == rows  # every old column of every row as it was
    assert [r[-2:] for r in _rows(v6, "model_versions")] == [("ready", None)] * 3


def test_discard_keeps_the_row_and_refuses_activation_until_restored(v6):
    with ReviewStore.open(v6) as s:
        with pytest.raises(StoreError, match="base is active"):
            s.discard_model_version(1)
        v = s.discard_model_version(2)
        assert (v.status, v.discarded, bool(v.discarded_at)) == ("discarded", True, True)
        assert version_state(v) == "discarded" and not is_available(v)  # its folder is still there: the status says
        with pytest.raises(StoreError, match="base-v1 was discarded: restore it"):
            s.activate_model_version(2)
        assert s.active_model_version().id == 1  # a refused activation changes nothing
        assert s.discard_model_version(2).discarded_at == v.discarded_at  # a second discard keeps the first time
        s.activate_model_version(1)
        assert rollback_target(s.model_versions(), s.model_version(1)) is None
        with pytest.raises(StoreError, match="No model version 9"):
            s.discard_model_version(9)
    with ReviewStore.open(v6) as s:  # it survives reopening
        assert s.model_version(2).discarded
        assert version_state(s.restore_model_version(2)) == "ready"
        s.activate_model_version(2)
        assert s.active_model_version().id == 2


def _plain(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_lriad_versions_shows_the_state_and_discards_and_restores(v6, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LRIAD_DATA_DIR", str(tmp_path / "data"))
    assert main(["versions", "--db", str(v6)]) == 0
    rows = _plain(capsys.readouterr().out)
    assert rows[0][:3] == ["ID", "STATE", "NAME"]
    assert [r[:3] for r in rows[1:]] == [["1", "active", "base"], ["2", "ready", "base-v1"], ["3", "deleted", "base-v2"]]
    assert main(["versions", "--db", str(v6), "discard", "2"]) == 0
    assert capsys.readouterr().out.strip() == "discarded base-v1"  # not trained by the app: its folder stays
    assert (tmp_path / "base-v1").is_dir()
    assert main(["versions", "--db", str(v6)]) == 0
    assert _plain(capsys.readouterr().out)[2][1] == "discarded"
    assert main(["versions", "--db", str(v6), "discard", "1"]) == 2
    assert "is active" in capsys.readouterr().err
    assert main(["versions", "--db", str(v6), "restore", "2"]) == 0
    assert capsys.readouterr().out.strip() == "restored base-v1 (ready)"
    assert main(["versions", "--db", str(tmp_path / "none.sqlite3")]) == 2


def test_lriad_versions_discard_deletes_an_adapter_the_app_trained_and_says_the_verdict(tmp_path, capsys,
                                                                                     monkeypatch):
    monkeypatch.setenv("LRIAD_DATA_DIR", str(tmp_path / "data"))
    folder = adapters_dir() / "base-v1"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    held = lambda label_acc: {"holdout": {"all": {"n": 12, "accuracy": 0.9, "label_accuracy": label_acc,  # noqa: E731
                                                  "mean_iou": 0.4}}}
    with ReviewStore.open(tmp_path / "s.sqlite3") as s:
        base = s.add_model_version("base", str(tmp_path))
        s.activate_model_version(base.id)
        v = s.add_model_version("base-v1", str(tmp_path), str(folder), base.id,
                                metrics={"before": held(0.5), "after": held(0.25)})
    assert main(["versions", "--db", str(tmp_path / "s.sqlite3"), "--tolerance", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].rstrip().endswith("discard: label accuracy fell")
    assert main(["versions", "--db", str(tmp_path / "s.sqlite3"), "discard", str(v.id)]) == 0
    assert capsys.readouterr().out.strip() == f"discarded base-v1; deleted {folder}"
    assert not folder.exists()
    assert main(["versions", "--db", str(tmp_path / "s.sqlite3"), "restore", str(v.id)]) == 2  # nothing to restore
    err = capsys.readouterr().err
    assert err.startswith("error: can't restore base-v1: its adapter folder") and err.rstrip().endswith("is gone")
    with ReviewStore.open(tmp_path / "s.sqlite3") as s:
        assert version_state(s.model_version(v.id)) == "discarded"  # not "deleted": the discard is recorded
