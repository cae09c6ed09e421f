"""The review store: images, inspections, the inspector's reviews (flags) and model versions, in SQLite.

Reviews are the data "Improve model" learns from, so they are written at once, each in its
own transaction, to a WAL database with `synchronous=FULL`: neither closing the app nor a
crash loses a flag. The schema carries `PRAGMA user_version` and upgrades through
`MIGRATIONS` (one function per version step).

History: every review is a new row; the latest row per image is the current review and the
older rows are its history. Undoing an edit deletes the row that edit wrote (see
`core.review.ReviewHistory`), so an undone flag never reaches training data.

A store (its connection) belongs to the thread that opened it; a worker that needs the
store (an export) opens its own with `ReviewStore.open(store.path)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from lriad_desktop.core.finding import Finding, Verdict
from lriad_desktop.core.paths import user_data_dir
from lriad_desktop.core.versions import ModelVersion
from lriad_desktop.core.review import (Review, ReviewKind, ReviewRecord, current_reviewer, defects_from_json,
                                       defects_to_json)

__all__ = ["ImageRecord", "ImageState", "InspectionRecord", "Review", "ReviewKind", "ReviewRecord",
           "ReviewStore", "StoreCounts", "StoreError", "TrainingRun", "defects_from_json", "defects_to_json"]

STORE_FILE = "reviews.sqlite3"


class StoreError(Exception):
    """The review store can't be opened or written; the message says why, for the user."""


@dataclass(frozen=True)
class ImageRecord:
    """One image file as the store knows it (identity = content hash + path)."""

    id: int
    sha256: str
    path: str
    object_name: str
    added_at: str


@dataclass(frozen=True)
class InspectionRecord:
    """One inspection of an image by one model version."""

    id: int
    image_id: int
    model_version: str
    finding: Finding
    created_at: str


@dataclass(frozen=True)
class ImageState:
    """Everything the queue needs about a known image: record, latest finding, current review."""

    image: ImageRecord
    finding: Finding | None
    inspection_id: int | None
    review: ReviewRecord | None


@dataclass(frozen=True)
class StoreCounts:
    images: int
    inspected: int
    accepted: int
    flagged: int
    reviews: int


@dataclass(frozen=True)
class TrainingRun:
    """One "Improve model" run and what it produced."""

    id: int
    status: str
    base_version_id: int | None
    result_version_id: int | None
    data_revision: int | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    log_path: str
    started_at: str
    finished_at: str | None


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
# MIGRATIONS[i] upgrades a database from schema version i to i + 1 (SQL or a function); append, never edit.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def apply_migration(db: sqlite3.Connection, step: int) -> None:
    """Run `MIGRATIONS[step]` (version `step` → `step + 1`) inside the caller's transaction."""
    migration = MIGRATIONS[step]
    _script(db, migration) if isinstance(migration, str) else migration(db)


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string (milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _review_row(row: sqlite3.Row) -> ReviewRecord:
    review = Review(ReviewKind(row["kind"]), Verdict(row["verdict"]), defects_from_json(row["defects_json"]),
                    row["note"], row["inspection_id"])
    return ReviewRecord(row["id"], row["image_id"], review, row["reviewer"], row["created_at"])


def _image_row(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(row["id"], row["sha256"], row["path"], row["object_name"], row["added_at"])


def _model_row(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(row["id"], row["name"], row["base_path"], row["adapter_path"], row["parent_id"],
                        row["data_revision"], json.loads(row["metrics_json"]), row["created_at"], bool(row["active"]))


def _run_row(row: sqlite3.Row) -> TrainingRun:
    return TrainingRun(row["id"], row["status"], row["base_version_id"], row["result_version_id"],
                       row["data_revision"], json.loads(row["config_json"]), json.loads(row["metrics_json"]),
                       row["log_path"], row["started_at"], row["finished_at"])


_LATEST_REVIEW = "SELECT * FROM reviews WHERE image_id = ? ORDER BY id DESC LIMIT 1"


class ReviewStore:
    """The SQLite review store. Open with `ReviewStore.open()`; close when done (or use `with`)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    # --- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | None = None, durable: bool = True) -> "ReviewStore":
        """Open (creating and upgrading as needed) the store; default `user_data_dir()/reviews.sqlite3`.

        `durable` (the default, for reviews) syncs every commit to disk; a connection that only
        records inspections (which can be redone) may pass False. Raises `StoreError` with a
        clear message when the folder or file can't be used.
        """
        target = Path(path) if path is not None else user_data_dir() / STORE_FILE
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"Can't create the data folder {target.parent}: {err.strerror or err}") from None
        if not os.access(target.parent, os.W_OK):
            raise StoreError(f"The data folder {target.parent} is read-only: reviews can't be saved there")
        if target.exists() and not os.access(target, os.W_OK):
            raise StoreError(f"The review store {target} is read-only: reviews can't be saved")
        try:
            db = sqlite3.connect(target, isolation_level=None, timeout=10.0)
            db.row_factory = sqlite3.Row
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"The review store {target} can't use write-ahead logging (mode {mode})")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, target)
            store._migrate()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"The review store {target} can't be opened: {err}") from None
        return store

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(f"The review store {self.path} was made by a newer version of LR-IAD Desktop "
                             f"(schema {version}, this version reads up to {SCHEMA_VERSION})")
        for step in range(version, SCHEMA_VERSION):
            with self._transaction() as db:
                apply_migration(db, step)
                db.execute(f"PRAGMA user_version = {step + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        """Close the connection (everything is already committed)."""
        self._db.close()

    def __enter__(self) -> "ReviewStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            with self._transaction() as db:
                return db.execute(sql, params)
        except sqlite3.OperationalError as err:  # disk full, read-only, locked: tell the user
            raise StoreError(f"Can't write to the review store {self.path}: {err}") from None

    # --- images -------------------------------------------------------------------------
    def add_image(self, path: str | os.PathLike, object_name: str | None = None,
                  sha256: str | None = None) -> ImageRecord:
        """The record of the image at `path` (its content hashed unless `sha256` is given), added if new.

        A known image keeps its record; a given `object_name` updates it.
        """
        spath = str(Path(path).resolve())
        try:
            digest = sha256 or file_sha256(spath)
        except OSError as err:
            raise StoreError(f"Can't read {spath}: {err.strerror or err}") from None
        row = self._db.execute("SELECT * FROM images WHERE sha256 = ? AND path = ?", (digest, spath)).fetchone()
        if row is None:
            added = now_iso()
            cur = self._write("INSERT INTO images (sha256, path, object_name, added_at) VALUES (?, ?, ?, ?)",
                              (digest, spath, object_name or "", added))
            return ImageRecord(int(cur.lastrowid), digest, spath, object_name or "", added)
        if object_name is not None and object_name != row["object_name"]:
            self._write("UPDATE images SET object_name = ? WHERE id = ?", (object_name, row["id"]))
            return ImageRecord(row["id"], digest, spath, object_name, row["added_at"])
        return _image_row(row)

    def image(self, image_id: int) -> ImageRecord | None:
        """The image record with this id, or None."""
        row = self._db.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        return _image_row(row) if row else None

    def lookup_paths(self, paths: Sequence[str | os.PathLike]) -> dict[str, ImageState]:
        """What the store knows about each path (its newest image record), for filling a queue."""
        found: dict[str, ImageState] = {}
        keys = [str(p) for p in paths]
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT * FROM images WHERE id IN (SELECT max(id) FROM images WHERE path IN ({marks}) GROUP BY path)",
                chunk).fetchall()
            for row in rows:
                image = _image_row(row)
                insp = self.latest_inspection(image.id)
                found[image.path] = ImageState(image, insp.finding if insp else None, insp.id if insp else None,
                                               self.current_review(image.id))
        return found

    # --- inspections --------------------------------------------------------------------
    def record_inspection(self, image_id: int, finding: Finding) -> InspectionRecord:
        """Store one finding for an image."""
        created = now_iso()
        cur = self._write("INSERT INTO inspections (image_id, model_version, verdict, finding_json, created_at) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (image_id, finding.model_version, finding.verdict.value, finding.to_json(), created))
        return InspectionRecord(int(cur.lastrowid), image_id, finding.model_version, finding, created)

    def latest_inspection(self, image_id: int) -> InspectionRecord | None:
        """The newest inspection of an image, or None."""
        row = self._db.execute("SELECT * FROM inspections WHERE image_id = ? ORDER BY id DESC LIMIT 1",
                               (image_id,)).fetchone()
        if row is None:
            return None
        return InspectionRecord(row["id"], row["image_id"], row["model_version"],
                                Finding.from_json(row["finding_json"]), row["created_at"])

    def latest_finding(self, image_id: int) -> Finding | None:
        """The newest finding for an image, or None when it was never inspected."""
        insp = self.latest_inspection(image_id)
        return insp.finding if insp else None

    # --- reviews ------------------------------------------------------------------------
    def save_review(self, image_id: int, review: Review, reviewer: str | None = None) -> ReviewRecord:
        """Write a review at once (it becomes the image's current review)."""
        created = now_iso()
        who = reviewer or current_reviewer()
        cur = self._write(
            "INSERT INTO reviews (image_id, inspection_id, kind, verdict, defects_json, note, reviewer, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (image_id, review.inspection_id, review.kind.value, review.verdict.value,
             defects_to_json(review.defects), review.note, who, created))
        return ReviewRecord(int(cur.lastrowid), image_id, review, who, created)

    def delete_review(self, review_id: int) -> None:
        """Remove one review row (undo of the edit that wrote it)."""
        self._write("DELETE FROM reviews WHERE id = ?", (review_id,))

    def current_review(self, image_id: int) -> ReviewRecord | None:
        """The image's latest review, or None when nobody reviewed it."""
        row = self._db.execute(_LATEST_REVIEW, (image_id,)).fetchone()
        return _review_row(row) if row else None

    def review_history(self, image_id: int) -> list[ReviewRecord]:
        """All reviews of an image, oldest first."""
        rows = self._db.execute("SELECT * FROM reviews WHERE image_id = ? ORDER BY id", (image_id,))
        return [_review_row(r) for r in rows]

    def _current_reviews(self, kind: ReviewKind | None = None) -> Iterator[sqlite3.Row]:
        sql = "SELECT * FROM reviews WHERE id IN (SELECT max(id) FROM reviews GROUP BY image_id)"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            params = (kind.value,)
        yield from self._db.execute(sql + " ORDER BY image_id", params)

    def _images_with_current(self, kind: ReviewKind) -> list[ImageRecord]:
        ids = [r["image_id"] for r in self._current_reviews(kind)]
        return [img for img in (self.image(i) for i in ids) if img is not None]

    def flagged_images(self) -> list[ImageRecord]:
        """Images whose current review is a flag (the inspector disagrees with the model)."""
        return self._images_with_current(ReviewKind.FLAG)

    def accepted_images(self) -> list[ImageRecord]:
        """Images whose current review accepts the model's finding."""
        return self._images_with_current(ReviewKind.ACCEPT)

    def reviewed_states(self) -> list[ImageState]:
        """Every reviewed image with its latest finding and current review (the exportable set)."""
        states = []
        for row in self._current_reviews():
            image = self.image(row["image_id"])
            if image is None:
                continue
            insp = self.latest_inspection(image.id)
            states.append(ImageState(image, insp.finding if insp else None, insp.id if insp else None,
                                     _review_row(row)))
        return states

    def known_labels(self) -> list[str]:
        """Defect labels used in reviews and findings, most used first."""
        counts: dict[str, int] = {}
        for (text,) in self._db.execute("SELECT defects_json FROM reviews"):
            for d in json.loads(text):
                counts[d["label"]] = counts.get(d["label"], 0) + 1
        for (text,) in self._db.execute("SELECT finding_json FROM inspections WHERE verdict = 'anomalous'"):
            for d in json.loads(text).get("defects", []):
                counts[d["label"]] = counts.get(d["label"], 0) + 1
        return sorted(counts, key=lambda k: (-counts[k], k))

    def counts(self) -> StoreCounts:
        """How many images, inspected images, accepted and flagged images, and review rows."""
        q = self._db.execute
        kinds = {k: 0 for k in ("accept", "flag")}
        for row in self._current_reviews():
            kinds[row["kind"]] += 1
        return StoreCounts(q("SELECT count(*) FROM images").fetchone()[0],
                           q("SELECT count(DISTINCT image_id) FROM inspections").fetchone()[0],
                           kinds["accept"], kinds["flag"], q("SELECT count(*) FROM reviews").fetchone()[0])

    def data_revision(self) -> int:
        """A number that grows with every review written (the newest review id; 0 when none)."""
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM reviews").fetchone()[0])

    # --- object names (the prompt's t = f(object)) ---------------------------------------
    def set_object_name(self, scope: str | os.PathLike, name: str) -> None:
        """Remember the object name for a folder or an image (an empty name forgets it)."""
        key = str(Path(scope).resolve())
        if name.strip():
            self._write("INSERT INTO object_names (scope, name, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (scope) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
                        (key, name.strip(), now_iso()))
        else:
            self._write("DELETE FROM object_names WHERE scope = ?", (key,))

    def object_names(self) -> dict[str, str]:
        """Every remembered scope (folder or image path) and its object name."""
        return {r["scope"]: r["name"] for r in self._db.execute("SELECT scope, name FROM object_names")}

    def object_name_for(self, path: str | os.PathLike) -> str | None:
        """The name remembered for this image or its nearest folder, or None."""
        return object_name_in(self.object_names(), path)

    # --- model versions and training runs ------------------------------------------------
    def add_model_version(self, name: str, base_path: str, adapter_path: str | None = None,
                          parent_id: int | None = None, data_revision: int | None = None,
                          metrics: dict[str, Any] | None = None) -> ModelVersion:
        """Register a model version (not active until `activate_model_version`)."""
        created = now_iso()
        cur = self._write("INSERT INTO model_versions (name, base_path, adapter_path, parent_id, data_revision, "
                          "metrics_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (name, base_path, adapter_path, parent_id, data_revision, json.dumps(metrics or {}),
                           created))
        return ModelVersion(int(cur.lastrowid), name, base_path, adapter_path, parent_id, data_revision,
                            dict(metrics or {}), created, False)

    def model_versions(self) -> list[ModelVersion]:
        """Every registered model version, oldest first."""
        return [_model_row(r) for r in self._db.execute("SELECT * FROM model_versions ORDER BY id")]

    def active_model_version(self) -> ModelVersion | None:
        """The version in use, or None."""
        row = self._db.execute("SELECT * FROM model_versions WHERE active = 1").fetchone()
        return _model_row(row) if row else None

    def activate_model_version(self, version_id: int | None) -> None:
        """Make one version active (None: none) in one transaction."""
        try:
            with self._transaction() as db:
                db.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
                if version_id is not None:
                    if db.execute("UPDATE model_versions SET active = 1 WHERE id = ?", (version_id,)).rowcount != 1:
                        raise StoreError(f"No model version {version_id}")
        except sqlite3.OperationalError as err:
            raise StoreError(f"Can't write to the review store {self.path}: {err}") from None

    def add_training_run(self, base_version_id: int | None, data_revision: int | None,
                         config: dict[str, Any] | None = None, log_path: str = "",
                         status: str = "running") -> TrainingRun:
        """Record the start of a training run."""
        started = now_iso()
        cur = self._write("INSERT INTO training_runs (status, base_version_id, data_revision, config_json, log_path, "
                          "started_at) VALUES (?, ?, ?, ?, ?, ?)",
                          (status, base_version_id, data_revision, json.dumps(config or {}), log_path, started))
        return TrainingRun(int(cur.lastrowid), status, base_version_id, None, data_revision, dict(config or {}),
                           {}, log_path, started, None)

    def finish_training_run(self, run_id: int, status: str, result_version_id: int | None = None,
                            metrics: dict[str, Any] | None = None) -> None:
        """Record how a training run ended."""
        self._write("UPDATE training_runs SET status = ?, result_version_id = ?, metrics_json = ?, finished_at = ? "
                    "WHERE id = ?", (status, result_version_id, json.dumps(metrics or {}), now_iso(), run_id))

    def training_runs(self) -> list[TrainingRun]:
        """Every training run, oldest first."""
        return [_run_row(r) for r in self._db.execute("SELECT * FROM training_runs ORDER BY id")]


def object_name_in(names: dict[str, str], path: str | os.PathLike) -> str | None:
    """The name for `path` from a scope → name map: the image itself, then its folders, nearest first."""
    if not names:
        return None
    p = Path(path)
    for scope in (p, *p.parents):
        name = names.get(str(scope))
        if name:
            return name
    return None
