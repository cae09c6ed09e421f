"""The review store's model versions and training runs: which models the app can inspect with, which
one is active (activating is one transaction), and what each "Improve model" run did."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from lriad_desktop.core.store.database import StoreConnection, StoreError, now_iso
from lriad_desktop.core.store.adapter_versions import ModelVersion


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


def _model_row(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(row["id"], row["name"], row["base_path"], row["adapter_path"], row["parent_id"],
                        row["data_revision"], json.loads(row["metrics_json"]), row["created_at"], bool(row["active"]),
                        row["status"], row["discarded_at"])


def _run_row(row: sqlite3.Row) -> TrainingRun:
    return TrainingRun(row["id"], row["status"], row["base_version_id"], row["result_version_id"],
                       row["data_revision"], json.loads(row["config_json"]), json.loads(row["metrics_json"]),
                       row["log_path"], row["started_at"], row["finished_at"])


class VersionTables(StoreConnection):
    """The `model_versions` and `training_runs` tables (a part of `ReviewStore`)."""

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

    def update_model_version_metrics(self, version_id: int, metrics: dict[str, Any]) -> None:
        """Replace a version's metrics (a run registers its version before the "after" evaluation, then this)."""
        if self._write("UPDATE model_versions SET metrics_json = ? WHERE id = ?",
                       (json.dumps(metrics), version_id)).rowcount != 1:
            raise StoreError(f"No model version {version_id}")

    def model_versions(self) -> list[ModelVersion]:
        """Every registered model version, oldest first."""
        return [_model_row(r) for r in self._db.execute("SELECT * FROM model_versions ORDER BY id")]

    def active_model_version(self) -> ModelVersion | None:
        """The version in use, or None."""
        row = self._db.execute("SELECT * FROM model_versions WHERE active = 1").fetchone()
        return _model_row(row) if row else None

    def model_version(self, version_id: int) -> ModelVersion:
        """One version by id (raises `StoreError` when there is none)."""
        row = self._db.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        if row is None:
            raise StoreError(f"No model version {version_id}")
        return _model_row(row)

    def activate_model_version(self, version_id: int | None) -> None:
        """Make one version active (None: none) in one transaction; a discarded version must be restored first."""
        with self._transaction() as db:
            if version_id is not None:
                row = db.execute("SELECT name, status FROM model_versions WHERE id = ?", (version_id,)).fetchone()
                if row is None:
                    raise StoreError(f"No model version {version_id}")
                if row["status"] == "discarded":
                    raise StoreError(f"Model version {row['name']} was discarded: restore it before activating it")
            db.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            if version_id is not None:
                db.execute("UPDATE model_versions SET active = 1 WHERE id = ?", (version_id,))

    def discard_model_version(self, version_id: int) -> ModelVersion:
        """Mark a version discarded (now): its row, name, figures and lineage stay; it can't be activated until
        `restore_model_version`. The active version can't be discarded. (Deleting its adapter folder to free
        the disk is the caller's business; the row then still reads "discarded".)"""
        with self._transaction() as db:
            row = db.execute("SELECT name, active FROM model_versions WHERE id = ?", (version_id,)).fetchone()
            if row is None:
                raise StoreError(f"No model version {version_id}")
            if row["active"]:
                raise StoreError(f"Model version {row['name']} is active: activate another one before discarding it")
            db.execute("UPDATE model_versions SET status = 'discarded', discarded_at = COALESCE(discarded_at, ?) "
                       "WHERE id = ?", (now_iso(), version_id))
        return self.model_version(version_id)

    def restore_model_version(self, version_id: int) -> ModelVersion:
        """Undo a discard (the version is listed as ready again; whether its files are still there is
        `versions.is_available`)."""
        if self._write("UPDATE model_versions SET status = 'ready', discarded_at = NULL WHERE id = ?",
                       (version_id,)).rowcount != 1:
            raise StoreError(f"No model version {version_id}")
        return self.model_version(version_id)

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

    def set_training_run_result(self, run_id: int, version_id: int) -> None:
        """Record the version a run produced as soon as it is registered (the run may still be evaluating it)."""
        self._write("UPDATE training_runs SET result_version_id = ? WHERE id = ?", (version_id, run_id))

    def training_runs(self) -> list[TrainingRun]:
        """Every training run, oldest first."""
        return [_run_row(r) for r in self._db.execute("SELECT * FROM training_runs ORDER BY id")]
