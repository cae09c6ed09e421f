"""The review store: images, inspections, the inspector's reviews (flags) and model versions, in SQLite.

Reviews are the data "Improve model" learns from, so they are written at once, each in its
own transaction, to a WAL database with `synchronous=FULL`: neither closing the app nor a
crash loses a flag. The schema carries `PRAGMA user_version` and upgrades through
`core.store.migrations.MIGRATIONS` (one step per version).

History: every review is a new row; the latest row per image is the current review and the
older rows are its history. Undoing an edit deletes the row that edit wrote (see
`core.store.review.ReviewHistory`), so an undone flag never reaches training data.

A store (its connection) belongs to the thread that opened it; a worker that needs the
store (an export) opens its own with `ReviewStore.open(store.path)`.

The store is split by responsibility: the connection and its error (`store_db`), the schema
(`migrations`), model versions and training runs (`store_versions`), thresholds per object
(`store_thresholds`), golden samples (`store_references`), and here the images,
inspections, reviews and object names. This module is the store's public face: `ReviewStore`,
`StoreError`, the records it returns and its helpers are imported from here. The review values
themselves (`Review`, `ReviewKind`, `ReviewRecord`) belong to `core.store.review`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from lriad_desktop.core.defect_kinds import canonical_label
from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.store.migrations import SCHEMA_VERSION, apply_migration
from lriad_desktop.core.paths import user_data_dir
from lriad_desktop.core.store.review import (Review, ReviewKind, ReviewRecord, current_reviewer, defects_from_json,
                                       defects_to_json)
from lriad_desktop.core.store.database import StoreBusy, StoreError, file_sha256, now_iso, store_error
from lriad_desktop.core.store.golden_samples import GoldenSample, GoodImage, ReferenceTables
from lriad_desktop.core.store.thresholds import ThresholdTables
from lriad_desktop.core.store.versions import TrainingRun, VersionTables

__all__ = ["BUSY_TIMEOUT_S", "STORE_FILE", "GoldenSample", "GoodImage", "ImageRecord", "ImageState", "InspectionRecord", "ReviewStore", "StoreBusy", "StoreCounts", "StoreError",
           "TrainingRun", "default_store_path", "file_sha256", "now_iso", "object_name_in"]

STORE_FILE = "reviews.sqlite3"
BUSY_TIMEOUT_S = 10.0  # how long a write waits for another program's lock (the UI's connection waits less)


def default_store_path() -> Path:
    """The app's own review store: `user_data_dir()/reviews.sqlite3`."""
    return user_data_dir() / STORE_FILE


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
    """Everything the queue needs about a known image: record, latest finding, current review; for an export
    also the inspection the review was made against and every inspection of the image, oldest first."""

    image: ImageRecord
    finding: Finding | None
    inspection_id: int | None
    review: ReviewRecord | None
    reviewed_against: InspectionRecord | None = None
    inspections: tuple[InspectionRecord, ...] = ()

    @property
    def latest(self) -> InspectionRecord | None:
        """The newest inspection (when the state carries the inspections)."""
        return self.inspections[-1] if self.inspections else None


@dataclass(frozen=True)
class StoreCounts:
    """How many images, inspected images and review rows; current reviews by kind (flagged = verdict flags,
    corrected = label and box corrections)."""

    images: int
    inspected: int
    accepted: int
    flagged: int
    reviews: int
    corrected: int = 0

    @property
    def to_learn(self) -> int:
        """Images whose current review disagrees with the model: what "Improve model" learns from."""
        return self.flagged + self.corrected


def _review_row(row: sqlite3.Row) -> ReviewRecord:
    review = Review(ReviewKind(row["kind"]), Verdict(row["verdict"]), defects_from_json(row["defects_json"]),
                    row["note"], row["inspection_id"])
    return ReviewRecord(row["id"], row["image_id"], review, row["reviewer"], row["created_at"])


def _inspection_row(row: sqlite3.Row) -> InspectionRecord:
    return InspectionRecord(row["id"], row["image_id"], row["model_version"], Finding.from_json(row["finding_json"]),
                            row["created_at"])


def _image_row(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(row["id"], row["sha256"], row["path"], row["object_name"], row["added_at"])


_LATEST_REVIEW = "SELECT * FROM reviews WHERE image_id = ? ORDER BY id DESC LIMIT 1"


class ReviewStore(VersionTables, ThresholdTables, ReferenceTables):
    """The SQLite review store. Open with `ReviewStore.open()`; close when done (or use `with`)."""

    # --- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | None = None, durable: bool = True) -> "ReviewStore":
        """Open (creating and upgrading as needed) the store; default `user_data_dir()/reviews.sqlite3`.

        `durable` (the default, for reviews) syncs every commit to disk; a connection that only
        records inspections (which can be redone) may pass False. Raises `StoreError` with a
        clear message when the folder or file can't be used.
        """
        target = Path(path) if path is not None else default_store_path()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"Can't create the data folder {target.parent}: {err.strerror or err}") from None
        if not os.access(target.parent, os.W_OK):
            raise StoreError(f"The data folder {target.parent} is read-only: reviews can't be saved there")
        if target.exists() and not os.access(target, os.W_OK):
            raise StoreError(f"The review store {target} is read-only: reviews can't be saved")
        try:
            db = sqlite3.connect(target, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as err:
            raise StoreError(f"The review store {target} can't be opened: {err}") from None
        try:
            db.row_factory = sqlite3.Row
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"The review store {target} can't use write-ahead logging (mode {mode})")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, target)
            store._migrate()
        except sqlite3.DatabaseError as err:
            db.close()
            busy = store_error(target, err, "open")
            if isinstance(busy, StoreBusy):
                raise busy from None
            raise StoreError(f"The review store {target} can't be opened: {err}") from None
        except StoreError:
            db.close()
            raise
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
        find = "SELECT * FROM images WHERE sha256 = ? AND path = ?"
        row = self._db.execute(find, (digest, spath)).fetchone()
        if row is not None and (object_name is None or object_name == row["object_name"]):
            return _image_row(row)  # known and unchanged: no write
        # One transaction, so two writers adding the same new image at once (two processes, or the
        # inspection worker and the UI) both get the one row instead of a UNIQUE constraint error.
        with self._transaction() as db:
            db.execute("INSERT INTO images (sha256, path, object_name, added_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (sha256, path) DO UPDATE SET object_name = coalesce(?, images.object_name)",
                       (digest, spath, object_name or "", now_iso(), object_name))
            row = db.execute(find, (digest, spath)).fetchone()
        return _image_row(row)

    def image(self, image_id: int) -> ImageRecord | None:
        """The image record with this id, or None."""
        row = self._db.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        return _image_row(row) if row else None

    def move_image(self, image_id: int, new_path: str | os.PathLike) -> ImageRecord:
        """Follow a file moved elsewhere (a watched image moved to the done folder): same image, new path."""
        spath = str(Path(new_path).resolve())
        try:
            self._write("UPDATE images SET path = ? WHERE id = ?", (spath, image_id))
        except sqlite3.IntegrityError:
            raise StoreError(f"The review store already holds this image at {spath}") from None
        record = self.image(image_id)
        if record is None:
            raise StoreError(f"No image {image_id} in the review store")
        return record

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
        cur = self._write("INSERT INTO inspections (image_id, model_version, verdict, finding_json, created_at, "
                          "anomaly_score) VALUES (?, ?, ?, ?, ?, ?)",
                          (image_id, finding.model_version, finding.verdict.value, finding.to_json(), created,
                           finding.anomaly_score))
        return InspectionRecord(int(cur.lastrowid), image_id, finding.model_version, finding, created)

    def latest_inspection(self, image_id: int) -> InspectionRecord | None:
        """The newest inspection of an image, or None."""
        row = self._db.execute("SELECT * FROM inspections WHERE image_id = ? ORDER BY id DESC LIMIT 1",
                               (image_id,)).fetchone()
        return _inspection_row(row) if row is not None else None

    def inspection(self, inspection_id: int) -> InspectionRecord | None:
        """One inspection by id, or None (every inspection is kept: a re-inspection adds a row)."""
        row = self._db.execute("SELECT * FROM inspections WHERE id = ?", (inspection_id,)).fetchone()
        return _inspection_row(row) if row is not None else None

    def inspection_history(self, image_id: int) -> list[InspectionRecord]:
        """Every inspection of an image, oldest first."""
        rows = self._db.execute("SELECT * FROM inspections WHERE image_id = ? ORDER BY id", (image_id,))
        return [_inspection_row(r) for r in rows]

    def inspected_between(self, since: str, until: str) -> list[tuple[ImageRecord, InspectionRecord]]:
        """Each image inspected in `[since, until)` (ISO 8601 UTC, as `now_iso` writes) with its newest
        inspection of that period, in the order they were inspected (a shift report's images)."""
        rows = self._db.execute(
            "SELECT i.*, m.sha256, m.path, m.object_name, m.added_at FROM inspections i JOIN images m "
            "ON m.id = i.image_id WHERE i.id IN (SELECT max(id) FROM inspections WHERE created_at >= ? "
            "AND created_at < ? GROUP BY image_id) ORDER BY i.id", (since, until)).fetchall()
        return [(ImageRecord(r["image_id"], r["sha256"], r["path"], r["object_name"], r["added_at"]),
                 InspectionRecord(r["id"], r["image_id"], r["model_version"], Finding.from_json(r["finding_json"]),
                                  r["created_at"])) for r in rows]

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

    def _current_reviews(self, *kinds: ReviewKind) -> Iterator[sqlite3.Row]:
        sql = "SELECT * FROM reviews WHERE id IN (SELECT max(id) FROM reviews GROUP BY image_id)"
        params: tuple[Any, ...] = tuple(k.value for k in kinds)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        yield from self._db.execute(sql + " ORDER BY image_id", params)

    def _images_with_current(self, *kinds: ReviewKind) -> list[ImageRecord]:
        ids = [r["image_id"] for r in self._current_reviews(*kinds)]
        return [img for img in (self.image(i) for i in ids) if img is not None]

    def flagged_images(self) -> list[ImageRecord]:
        """Images whose current review disagrees with the model (a verdict flag, a label or a box correction)."""
        return self._images_with_current(ReviewKind.FLAG, ReviewKind.LABEL, ReviewKind.BOX)

    def accepted_images(self) -> list[ImageRecord]:
        """Images whose current review accepts the model's finding."""
        return self._images_with_current(ReviewKind.ACCEPT)

    def reviewed_states(self, with_history: bool = False) -> list[ImageState]:
        """Every reviewed image with its latest finding and current review (the exportable set); with
        `with_history`, also the inspection each review was made against and all of the image's inspections."""
        states = []
        for row in self._current_reviews():
            image = self.image(row["image_id"])
            if image is None:
                continue
            review = _review_row(row)
            if with_history:
                history = tuple(self.inspection_history(image.id))
                insp = history[-1] if history else None
                against = next((h for h in history if h.id == review.review.inspection_id), None)
            else:
                history, insp, against = (), self.latest_inspection(image.id), None
            states.append(ImageState(image, insp.finding if insp else None, insp.id if insp else None,
                                     review, against, history))
        return states

    def known_labels(self) -> list[str]:
        """Defect labels used in reviews and findings, most used first, each in its one spelling
        (`canonical_label`: "missing part" and "missing_part" are one label); none empty."""
        counts: dict[str, int] = {}
        labels = [d["label"] for (text,) in self._db.execute("SELECT defects_json FROM reviews")
                  for d in json.loads(text)]
        labels += [d["label"] for (text,) in self._db.execute(
            "SELECT finding_json FROM inspections WHERE verdict = 'anomalous'")
                   for d in json.loads(text).get("defects", [])]
        for label in labels:
            key = canonical_label(label)
            if key:
                counts[key] = counts.get(key, 0) + 1
        return sorted(counts, key=lambda k: (-counts[k], k))

    def counts(self) -> StoreCounts:
        """How many images, inspected images, accepted and flagged images, and review rows."""
        q = self._db.execute
        kinds = {k.value: 0 for k in ReviewKind}
        for row in self._current_reviews():
            kinds[row["kind"]] += 1
        return StoreCounts(q("SELECT count(*) FROM images").fetchone()[0],
                           q("SELECT count(DISTINCT image_id) FROM inspections").fetchone()[0],
                           kinds["accept"], kinds["flag"], q("SELECT count(*) FROM reviews").fetchone()[0],
                           kinds["label"] + kinds["box"])

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
