"""The review store's SQLite connection: its transactions, its one error type, and the time stamps
and content hashes its rows carry. `core.store.review_store.ReviewStore` is built on it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TypeVar

_Store = TypeVar("_Store", bound="StoreConnection")


class StoreError(Exception):
    """The review store can't be opened, read or written; the message says why, for the user."""


class StoreBusy(StoreError):
    """Another connection (another program, or a long write of this one) holds the store's write lock."""


# SQLite's primary result codes (the low byte of `sqlite3.Error.sqlite_errorcode`).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def store_error(path: Path, err: sqlite3.Error, doing: str = "use") -> StoreError:
    """The one-line `StoreError` for an sqlite error on the store at `path` (`doing`: "write to", "read", …)."""
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(err)
    if code in (_BUSY, _LOCKED) or "locked" in text:
        return StoreBusy(f"The review store {path} is busy: another program is writing to it")
    if code == _FULL or "full" in text:
        return StoreError(f"Not enough disk space to write the review store {path}")
    if code == _READONLY:
        return StoreError(f"The review store {path} is read-only: reviews can't be saved")
    if code in (_CORRUPT, _NOTADB):
        return StoreError(f"The review store {path} is damaged ({text}); restore it from a backup or move it away")
    if code in (_IOERR, _CANTOPEN):
        return StoreError(f"Can't {doing} the review store {path}: the disk can't be read or written ({text})")
    return StoreError(f"Can't {doing} the review store {path}: {text}")


class _Cursor:
    """A cursor whose every step turns sqlite errors into `StoreError` (rows are `sqlite3.Row`)."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor, self._path = cursor, path

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.Error as err:
            raise store_error(self._path, err, "read") from None

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.Error as err:
            raise store_error(self._path, err, "read") from None

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                row = self._cursor.fetchone()
            except sqlite3.Error as err:
                raise store_error(self._path, err, "read") from None
            if row is None:
                return
            yield row


class GuardedConnection:
    """The store's sqlite3 connection as every store method (and migration) uses it: `execute` and the
    cursors it returns raise `StoreError` instead of any `sqlite3.Error`, so none reaches a caller."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection, self._path = connection, path

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        try:
            return _Cursor(self._connection.execute(sql, params), self._path)
        except sqlite3.Error as err:
            raise store_error(self._path, err, "read" if sql.lstrip()[:6].upper() == "SELECT" else "write to") \
                from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _Cursor:
        try:
            return _Cursor(self._connection.executemany(sql, rows), self._path)
        except sqlite3.Error as err:
            raise store_error(self._path, err, "write to") from None

    def set_busy_timeout(self, seconds: float) -> None:
        """How long a statement waits for another connection's lock before `StoreBusy`."""
        self.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    def close(self) -> None:
        try:
            self._connection.close()
        except sqlite3.Error as err:
            raise store_error(self._path, err, "close") from None


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
        self._db = GuardedConnection(connection, path)
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

    def set_busy_timeout(self, seconds: float) -> None:
        """How long a write waits for another connection's lock before it raises `StoreBusy` (10 s when opened;
        the UI's connection waits briefly and leaves a longer wait to a background task)."""
        self._db.set_busy_timeout(seconds)

    @contextmanager
    def _transaction(self) -> Iterator[GuardedConnection]:
        """One write transaction (BEGIN IMMEDIATE: the lock is taken up front, so a busy store fails here)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            try:
                self._db.execute("ROLLBACK")
            except StoreError:  # SQLite already rolled back (a full disk can do that): nothing more to undo
                pass
            raise
        try:
            self._db.execute("COMMIT")
        except StoreError:
            try:
                self._db.execute("ROLLBACK")
            except StoreError:
                pass
            raise

    def _write(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        """One statement in its own transaction; any sqlite error is a `StoreError` (`StoreBusy` when locked)."""
        with self._transaction() as db:
            return db.execute(sql, params)
