"""The schema of the memory database and its migrations, the same on SQLite and PostgreSQL.

``MIGRATIONS[n]`` upgrades a version n-1 database to version n in place, inside one
transaction. It is written in SQLite's type names; the PostgreSQL backend maps them
(``postgres.postgres_ddl``). The version lives where the backend keeps it (SQLite:
``PRAGMA user_version``; PostgreSQL: ``meta.schema_version``). A file that is not a healthy SQLite
database, or was written by a newer evs, is reported (``memory_corrupt``) and never
overwritten: it may be someone's only copy of their memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventvstream.errors import EvsError
from eventvstream.memory.backends import connect
from eventvstream.memory.jobs import JOBS_DDL
from eventvstream.memory.leases import LEASES_DDL
from eventvstream.memory.roles import ROLES_DDL

if TYPE_CHECKING:
    from eventvstream.memory.backends import Backend

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "MemoryCorruptError", "check_and_migrate", "connect"]


class MemoryCorruptError(EvsError):
    """The database file is damaged or not a database; it is left untouched."""

    code = "memory_corrupt"


SCHEMA_VERSION = 8
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
    # v4: deletions carry a sequence number too, so a cache in another process (PostgreSQL
    # replicas) learns that an event is gone, not only what changed.
    4: """
    CREATE TABLE deletions (event_id INTEGER NOT NULL, seq INTEGER NOT NULL);
    CREATE INDEX deletions_seq ON deletions(seq);
    """,
    # v5: the wall-clock (Unix) time at which a live event began, so "what happened at 10:30?"
    # has an answer after the fact, across reconnects and restarts (each live session maps its
    # stream times to the wall clock from its first frame). NULL for files.
    5: """
    ALTER TABLE events ADD COLUMN wall_start REAL;
    CREATE INDEX events_stream_wall ON events(stream, wall_start);
    """,
    # v6: the alert tables (watches, the alert log and its delivery outbox, keyframe brightness),
    # which ``alertdb.py`` used to create in the SQLite file under a version of their own, join
    # the store's migrations, so they exist on PostgreSQL too. IF NOT EXISTS: a file that
    # already has them (alert schema 1) keeps them as they are; the layout is the same.
    6: """
    CREATE TABLE IF NOT EXISTS alert_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS watches (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        stream TEXT,
        spec TEXT NOT NULL,
        vector BLOB,
        vector_model TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS watches_owner ON watches(owner);
    CREATE TABLE IF NOT EXISTS alerts (
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
    CREATE INDEX IF NOT EXISTS alerts_owner ON alerts(owner, id);
    CREATE INDEX IF NOT EXISTS alerts_watch ON alerts(watch_id, created);
    CREATE TABLE IF NOT EXISTS deliveries (
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
    CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, channel, next_at);
    CREATE TABLE IF NOT EXISTS event_frames (
        event_id INTEGER PRIMARY KEY,
        luma REAL,
        previous_luma REAL,
        keyframe TEXT
    );
    """,
    # v7: stream leases, the replica list, persisted pull sources and REST-created streams, for
    # replicas on one database (memory/leases.py).
    7: LEASES_DDL,
    # v8: for replicas on one database, the rest of what was per process: role leases (one
    # alert engine per database, memory/roles.py), upload job status readable on any replica
    # (memory/jobs.py), and the keyframe of a watched event in the database, so the replica
    # that evaluates an alert (or serves its keyframe link) need not be the one that saw it.
    8: ROLES_DDL
    + JOBS_DDL
    + """
    ALTER TABLE event_frames ADD COLUMN image BLOB;
    """,
}


def check_and_migrate(backend: Backend) -> None:
    """Check an existing database's integrity, then bring it to ``SCHEMA_VERSION``.

    Opening is part of the check, since SQLite reports a non-database file on the first
    statement. Migrations run under the backend's migration lock (one migrator at a time,
    also across processes on PostgreSQL), each in its own transaction.
    """
    try:
        backend.check(backend.existed)
        with backend.migration_lock():
            version = backend.schema_version()
            if version > SCHEMA_VERSION:
                raise MemoryCorruptError(
                    f"{backend.describe()} has schema version {version}, newer than this evs "
                    f"({SCHEMA_VERSION}); upgrade eventvstream"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                backend.apply_migration(target, MIGRATIONS[target])
            # A database written before meta.max_span was kept: derive it (EventStore._scope).
            with backend.writer() as conn:
                if conn.execute("SELECT 1 FROM meta WHERE key = 'max_span'").fetchone() is None:
                    span = conn.execute(
                        "SELECT COALESCE(MAX(t_end - t_start), 0) FROM events"
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('max_span', ?)",
                        (repr(float(span[0])),),
                    )
    except backend.errors as exc:
        if backend.shared:
            raise
        raise MemoryCorruptError(
            f"{backend.describe()} is not a readable memory database ({exc}); it was left "
            "untouched - move it aside to start a new memory, or restore a backup"
        ) from None
