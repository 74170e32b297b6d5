"""The alert tables, in the memory bank's own ``evs.sqlite3``.

Why the same file: an alert is only as durable as the event it cites, and one file is one thing
to back up. Why a separate connection and schema version: the event store owns its tables and
``PRAGMA user_version``; the alert tables have their own version (``alert_state.schema``) and
migrations here, so the two evolve without touching each other. Same durability rules as the
store: WAL journal, ``synchronous=FULL``, so an alert committed to the outbox survives
``kill -9`` and power loss.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eventvstream.memory.backends import sqlite_transaction

ALERT_SCHEMA_VERSION = 1
ALERT_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE watches (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        stream TEXT,
        spec TEXT NOT NULL,
        vector BLOB,
        vector_model TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX watches_owner ON watches(owner);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        watch_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        stream TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (watch_id, event_id)
    );
    CREATE INDEX alerts_owner ON alerts(owner, id);
    CREATE INDEX alerts_watch ON alerts(watch_id, created);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        last_error TEXT,
        delivered_at REAL
    );
    CREATE INDEX deliveries_due ON deliveries(status, channel, next_at);
    CREATE TABLE event_frames (
        event_id INTEGER PRIMARY KEY,
        luma REAL,
        previous_luma REAL,
        keyframe TEXT
    );
    """,
}


class AlertDatabase:
    """Thread-local connections to ``evs.sqlite3`` plus one writer lock for the alert tables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        conn.isolation_level = None  # explicit BEGIN IMMEDIATE / COMMIT below
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction (committed when the block exits without error)."""
        with sqlite_transaction(self.conn, self._write_lock) as conn:
            yield conn

    def _migrate(self) -> None:
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS alert_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = conn.execute("SELECT value FROM alert_state WHERE key = 'schema'").fetchone()
            version = int(row[0]) if row else 0
            if version > ALERT_SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: alert tables are version {version}, newer than this evs "
                    f"({ALERT_SCHEMA_VERSION}); upgrade eventvstream"
                )
            for target in range(version + 1, ALERT_SCHEMA_VERSION + 1):
                for statement in ALERT_MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO alert_state VALUES ('schema', ?)", (str(target),)
                )

    def state(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM alert_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_state(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        """Inside a :meth:`write` block."""
        conn.execute("INSERT OR REPLACE INTO alert_state VALUES (?, ?)", (key, value))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
