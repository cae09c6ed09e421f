"""The review store's SQLite connection: its transactions, its one error type, and the time stamps
and content hashes its rows carry. `core.store.ReviewStore` is built on it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

_Store = TypeVar("_Store", bound="StoreConnection")


class StoreError(Exception):
    """The review store can't be opened or written; the message says why, for the user."""


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


class StoreConnection:
    """One SQLite connection of the review store (it belongs to the thread that opened it)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        """Close the connection (everything is already committed)."""
        self._db.close()

    def __enter__(self: _Store) -> _Store:
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
