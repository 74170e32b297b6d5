"""The SQLite schema of ``evs.sqlite3``, its migrations, and opening a file safely.

The schema version lives in ``PRAGMA user_version``; ``MIGRATIONS[n]`` upgrades a version n-1
file to version n in place, inside one transaction. A file that is not a healthy SQLite
database, or was written by a newer evs, is reported (``memory_corrupt``) and never
overwritten: it may be someone's only copy of their memory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from eventvstream.errors import EvsError


class MemoryCorruptError(EvsError):
    """The database file is damaged or not a database; it is left untouched."""

    code = "memory_corrupt"


SCHEMA_VERSION = 3
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        source TEXT,
        source_index INTEGER,
        t_start REAL NOT NULL,
        t_end REAL NOT NULL,
        frames INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        keyframes TEXT NOT NULL,
        labels TEXT NOT NULL,
        boundaries TEXT NOT NULL,
        caption TEXT,
        text TEXT,
        text_embedding BLOB,
        merge_count INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX events_scope_time ON events(stream, owner, t_start);
    CREATE INDEX events_seq ON events(seq);
    CREATE INDEX events_source ON events(source);
    CREATE TABLE merges (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id),
        merged TEXT NOT NULL,
        similarity REAL,
        at REAL NOT NULL
    );
    CREATE TABLE sources (
        source TEXT PRIMARY KEY,
        stream TEXT NOT NULL,
        owner TEXT NOT NULL,
        path TEXT,
        status TEXT NOT NULL,
        events INTEGER NOT NULL DEFAULT 0,
        started REAL NOT NULL,
        finished REAL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('seq', '0');
    """,
    # v2: consolidation asks for each stream's latest slot on every add; without an index on
    # the end time that was a scan of the whole stream (ingest fell from 12k to 1k events/s
    # at 1M events, docs/benchmarks.md).
    2: """
    CREATE INDEX events_scope_end ON events(stream, owner, t_end);
    """,
    # v3: with owner in the middle of those keys, a scope without an owner could not range on
    # time (the planner used the stream prefix only: a 1-hour window in a 200k-event stream took
    # 144 ms). Key on (stream, time) and (owner, time) instead.
    3: """
    DROP INDEX events_scope_time;
    DROP INDEX events_scope_end;
    CREATE INDEX events_stream_start ON events(stream, t_start);
    CREATE INDEX events_stream_end ON events(stream, t_end);
    CREATE INDEX events_owner_start ON events(owner, t_start);
    """,
}


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the durability settings every write relies on: WAL journal and
    ``synchronous=FULL`` (a committed transaction survives ``kill -9`` and power loss)."""
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def check_and_migrate(
    connection: Callable[[], sqlite3.Connection],
    path: Path,
    *,
    existed: bool,
    write_lock: threading.Lock,
) -> None:
    """Check an existing file's integrity, then bring it to ``SCHEMA_VERSION``.

    ``connection`` opens (or returns) the store's connection: opening is part of the check,
    since SQLite reports a non-database file on the first statement. ``existed`` says whether
    ``path`` held data before (a new, empty file needs no integrity check); ``write_lock`` is
    the store's writer lock, held while migrating.
    """
    try:
        conn = connection()
        if existed:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise MemoryCorruptError(f"{path}: integrity check failed: {result}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise MemoryCorruptError(
            f"{path} is not a readable memory database ({exc}); it was left untouched "
            "- move it aside to start a new memory, or restore a backup"
        ) from None
    if version > SCHEMA_VERSION:
        raise MemoryCorruptError(
            f"{path} has schema version {version}, newer than this evs "
            f"({SCHEMA_VERSION}); upgrade eventvstream"
        )
    with write_lock, conn:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.executescript(f"BEGIN; {MIGRATIONS[target]} PRAGMA user_version = {target};")
        # A file written before meta.max_span was kept: derive it (EventStore._scope needs it).
        if conn.execute("SELECT 1 FROM meta WHERE key = 'max_span'").fetchone() is None:
            span = conn.execute("SELECT COALESCE(MAX(t_end - t_start), 0) FROM events").fetchone()
            conn.execute("INSERT INTO meta VALUES ('max_span', ?)", (repr(float(span[0])),))
