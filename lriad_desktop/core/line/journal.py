"""What the line side keeps on disk beside the review store, so a killed watcher loses nothing it owed the line.

`line-journal.sqlite3` (beside the store) holds two tables:
- the MQTT outbox: each finding's message is written here before it is handed to the MQTT client and deleted
  when the broker acknowledges it. A watcher killed while the broker was down leaves its messages here, and
  the next one on the same folder (`source`: one watch per folder holds its lock) sends them first (at least once, as QoS 1 promises: a message acknowledged just before a kill
  can come twice, never not at all);
- the watch errors: a landed file that could not be inspected (unreadable, empty, not an image), with why,
  so it is on record and not only in a terminal's scroll-back.

One connection, used from the caller's thread and paho's network thread under one lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from lriad_desktop.core.store.database import StoreError, now_iso

JOURNAL_FILE = "line-journal.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, source TEXT NOT NULL, topic TEXT NOT NULL,
                                   payload TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS watch_errors (id INTEGER PRIMARY KEY, path TEXT NOT NULL, error TEXT NOT NULL,
                                         at TEXT NOT NULL);
"""


class JournalError(StoreError):
    """The line journal can't be opened or written; the message names the file."""


@dataclass(frozen=True)
class WatchError:
    """A landed file the watch could not inspect, and why."""

    path: str
    error: str
    at: str


class LineJournal:
    """The outbox and the watch errors in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, source: str = "") -> None:
        self.path = Path(path)
        self.source = source  # whose outbox rows these are (the watched folder)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a row written is there after a power cut
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise JournalError(f"Can't open the line journal {self.path}: {err}") from None

    @classmethod
    def beside(cls, store_path: str | os.PathLike, source: str = "") -> "LineJournal":
        """The journal in the review store's folder, for the watch of `source`."""
        return cls(Path(store_path).parent / JOURNAL_FILE, source)

    def _run(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except sqlite3.Error as err:
                raise JournalError(f"Can't write the line journal {self.path}: {err}") from None

    # --- the outbox -------------------------------------------------------------------------------------------
    def add_message(self, topic: str, payload: str) -> int:
        """Keep a message until the broker has it; its row id."""
        return int(self._run("INSERT INTO outbox (source, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                             (self.source, topic, payload, now_iso())).lastrowid)

    def message_sent(self, row_id: int) -> None:
        """The broker acknowledged the message: forget it."""
        self._run("DELETE FROM outbox WHERE id = ?", (row_id,))

    def unsent(self) -> list[tuple[int, str, str]]:
        """(row id, topic, payload) of this source's messages not acknowledged yet, oldest first."""
        return list(self._run("SELECT id, topic, payload FROM outbox WHERE source = ? ORDER BY id",
                              (self.source,)).fetchall())

    # --- the watch errors -------------------------------------------------------------------------------------
    def record_error(self, path: str, error: str) -> None:
        """Put on record that the file at `path` could not be inspected, and why."""
        self._run("INSERT INTO watch_errors (path, error, at) VALUES (?, ?, ?)", (path, error, now_iso()))

    def errors(self) -> list[WatchError]:
        """The recorded watch errors, oldest first."""
        return [WatchError(*row) for row in self._run("SELECT path, error, at FROM watch_errors ORDER BY id")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
