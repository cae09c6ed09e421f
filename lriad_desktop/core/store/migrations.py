"""The review store's schema, as the steps that build it: `MIGRATIONS[i]` upgrades a database from
schema version i to i + 1 (`PRAGMA user_version` says where a database stands)."""

from __future__ import annotations

import sqlite3
from typing import Callable


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (`executescript` would commit it)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


_V1 = """
        CREATE TABLE images (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, path TEXT NOT NULL,
            object_name TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL, UNIQUE (sha256, path));
        CREATE INDEX images_by_path ON images (path);
        CREATE TABLE inspections (id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
            model_version TEXT NOT NULL, verdict TEXT NOT NULL, finding_json TEXT NOT NULL,
            created_at TEXT NOT NULL);
        CREATE INDEX inspections_by_image ON inspections (image_id, id);
        CREATE TABLE reviews (id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
            inspection_id INTEGER REFERENCES inspections (id) ON DELETE SET NULL,
            kind TEXT NOT NULL CHECK (kind IN ('accept', 'flag')),
            verdict TEXT NOT NULL CHECK (verdict IN ('anomalous', 'normal')),
            defects_json TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '',
            reviewer TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE INDEX reviews_by_image ON reviews (image_id, id);
"""
_V2 = """
        CREATE TABLE object_names (scope TEXT PRIMARY KEY, name TEXT NOT NULL, updated_at TEXT NOT NULL);
"""
_V3 = """
        CREATE TABLE model_versions (id INTEGER PRIMARY KEY, name TEXT NOT NULL, base_path TEXT NOT NULL,
            adapter_path TEXT, parent_id INTEGER REFERENCES model_versions (id), data_revision INTEGER,
            metrics_json TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0);
        CREATE UNIQUE INDEX one_active_model ON model_versions (active) WHERE active = 1;
        CREATE TABLE training_runs (id INTEGER PRIMARY KEY, status TEXT NOT NULL,
            base_version_id INTEGER REFERENCES model_versions (id),
            result_version_id INTEGER REFERENCES model_versions (id), data_revision INTEGER,
            config_json TEXT NOT NULL DEFAULT '{}', metrics_json TEXT NOT NULL DEFAULT '{}',
            log_path TEXT NOT NULL DEFAULT '', started_at TEXT NOT NULL, finished_at TEXT);
"""
# the anomaly score beside each inspection (the queue sorts by it; older rows have none: NULL) and a decision
# threshold per object name
_V4_SCORES = """
        ALTER TABLE inspections ADD COLUMN anomaly_score REAL;
        CREATE TABLE object_thresholds (object_name TEXT PRIMARY KEY,
            threshold REAL NOT NULL CHECK (threshold >= 0 AND threshold <= 1), updated_at TEXT NOT NULL);
"""
# Golden samples: good images of an object the inspector chose as references (object_key: core.inspection.prompting.object_key).
_V5_GOLDEN = """
        CREATE TABLE golden_samples (id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
            object_name TEXT NOT NULL, object_key TEXT NOT NULL, added_by TEXT NOT NULL, added_at TEXT NOT NULL,
            UNIQUE (object_key, image_id));
        CREATE INDEX golden_by_object ON golden_samples (object_key, id);
"""


def _v6_review_kinds(db: sqlite3.Connection) -> None:
    """Reviews are also label corrections and box corrections: the `kind` CHECK widens, which SQLite can only
    do by rebuilding the table (every row is copied as it is, ids included)."""
    _script(db, """
        CREATE TABLE reviews_v4 (id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
            inspection_id INTEGER REFERENCES inspections (id) ON DELETE SET NULL,
            kind TEXT NOT NULL CHECK (kind IN ('accept', 'flag', 'label', 'box')),
            verdict TEXT NOT NULL CHECK (verdict IN ('anomalous', 'normal')),
            defects_json TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '',
            reviewer TEXT NOT NULL, created_at TEXT NOT NULL);
        INSERT INTO reviews_v4 (id, image_id, inspection_id, kind, verdict, defects_json, note, reviewer, created_at)
            SELECT id, image_id, inspection_id, kind, verdict, defects_json, note, reviewer, created_at FROM reviews;
        DROP TABLE reviews;
        ALTER TABLE reviews_v4 RENAME TO reviews;
        CREATE INDEX reviews_by_image ON reviews (image_id, id)
    """)


# A model version the inspector discarded keeps its row (its name, figures and lineage) with status 'discarded'
# and when; its adapter folder may be gone to free the disk. Every earlier version is 'ready' (one whose folder
# was deleted before this still reads "(deleted)": its files are gone, nobody recorded a discard).
_V7_DISCARDED = """
        ALTER TABLE model_versions ADD COLUMN status TEXT NOT NULL DEFAULT 'ready'
            CHECK (status IN ('ready', 'discarded'));
        ALTER TABLE model_versions ADD COLUMN discarded_at TEXT
"""

# MIGRATIONS[i] upgrades a database from schema version i to i + 1 (SQL or a function); append, never edit.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (_V1, _V2, _V3, _V4_SCORES, _V5_GOLDEN,
                                                                   _v6_review_kinds, _V7_DISCARDED)
SCHEMA_VERSION = len(MIGRATIONS)


def apply_migration(db: sqlite3.Connection, step: int) -> None:
    """Run `MIGRATIONS[step]` (version `step` → `step + 1`) inside the caller's transaction."""
    migration = MIGRATIONS[step]
    _script(db, migration) if isinstance(migration, str) else migration(db)
