"""The SQLite store: the memory bank's source of truth.

Durability: WAL journal with ``synchronous=FULL``, so a committed transaction survives a
``kill -9`` or power loss; the caller is told "stored" only after the commit returns. Every
change bumps a global sequence number (``meta.seq``) written on the row, which lets the FAISS
cache find and replay whatever it missed. The schema version lives in ``PRAGMA user_version``;
``MIGRATIONS`` upgrades older files in place, and a file that is not a healthy SQLite database is
reported, never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

_COLUMNS = (
    "id, stream, owner, source, source_index, t_start, t_end, frames, embedding, keyframes, "
    "labels, boundaries, caption, text, text_embedding, merge_count, seq, created, updated"
)


@dataclass
class EventRow:
    """One stored event slot (after any merges)."""

    id: int
    stream: str
    owner: str
    source: str | None
    source_index: int | None
    start: float
    end: float
    frames: int
    embedding: np.ndarray
    keyframes: list[dict[str, Any]]
    labels: list[list[Any]]
    boundaries: dict[str, Any]
    caption: str | None
    text: str | None
    text_embedding: np.ndarray | None
    merge_count: int
    seq: int
    created: float
    updated: float

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        data = {
            "id": self.id,
            "stream": self.stream,
            "owner": self.owner,
            "source": self.source,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "frames": self.frames,
            "keyframes": self.keyframes,
            "labels": self.labels,
            "boundaries": self.boundaries,
            "caption": self.caption,
            "text": self.text,
            "merge_count": self.merge_count,
        }
        if with_embedding:
            data["embedding"] = [round(float(x), 6) for x in self.embedding]
        return data


def _blob(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def _vector(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


def _row(values: Sequence[Any]) -> EventRow:
    return EventRow(
        id=values[0],
        stream=values[1],
        owner=values[2],
        source=values[3],
        source_index=values[4],
        start=values[5],
        end=values[6],
        frames=values[7],
        embedding=_vector(values[8]),  # type: ignore[arg-type]
        keyframes=json.loads(values[9]),
        labels=json.loads(values[10]),
        boundaries=json.loads(values[11]),
        caption=values[12],
        text=values[13],
        text_embedding=_vector(values[14]),
        merge_count=values[15],
        seq=values[16],
        created=values[17],
        updated=values[18],
    )


class EventStore:
    """Thread-safe access to ``evs.sqlite3``: one connection per thread, one writer at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._check_and_migrate()

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
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

    def _check_and_migrate(self) -> None:
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            conn = self.conn
            if existed:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise MemoryCorruptError(f"{self.path}: integrity check failed: {result}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise MemoryCorruptError(
                f"{self.path} is not a readable memory database ({exc}); it was left untouched "
                "- move it aside to start a new memory, or restore a backup"
            ) from None
        if version > SCHEMA_VERSION:
            raise MemoryCorruptError(
                f"{self.path} has schema version {version}, newer than this evs "
                f"({SCHEMA_VERSION}); upgrade eventvstream"
            )
        with self._write_lock, conn:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                conn.executescript(f"BEGIN; {MIGRATIONS[target]} PRAGMA user_version = {target};")
        if self.meta("max_span") is None:  # a file written before max_span was kept: derive it
            span = conn.execute("SELECT COALESCE(MAX(t_end - t_start), 0) FROM events").fetchone()
            self.set_meta("max_span", repr(float(span[0])))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta ----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock, self.conn as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _next_seq(self, conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")
        return int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

    # -- writes (call inside ``transaction()``) ----------------------------------------------
    def transaction(self) -> _Transaction:
        """``with store.transaction() as tx:`` — one durable commit for many changes."""
        return _Transaction(self)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, event_id: int) -> EventRow | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE id = ?", (event_id,)
        ).fetchone()
        return None if row is None else _row(row)

    def get_many(self, ids: Sequence[int]) -> dict[int, EventRow]:
        result: dict[int, EventRow] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE id IN ({marks})", part
            ):
                result[row[0]] = _row(row)
        return result

    def last_of_stream(self, stream: str, owner: str) -> EventRow | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND owner = ? "
            "ORDER BY t_end DESC, id DESC LIMIT 1",
            (stream, owner),
        ).fetchone()
        return None if row is None else _row(row)

    def query(
        self,
        *,
        stream: str | None = None,
        owner: str | None = None,
        t0: float | None = None,
        t1: float | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[EventRow]:
        """Events overlapping [t0, t1] in a scope, in time order."""
        where, args = self._scope(stream, owner, t0, t1)
        where.append("id > ?")
        args.append(after_id)
        sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY t_start, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.conn.execute(sql, args)]

    def latest(
        self, *, stream: str | None = None, owner: str | None = None, limit: int = 5
    ) -> list[EventRow]:
        """The ``limit`` events that ended last in a scope, newest first ("what is happening
        now")."""
        where, args = self._scope(stream, owner, None, None)
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where) or '1'} "
            f"ORDER BY t_end DESC, id DESC LIMIT {int(limit)}"
        )
        return [_row(r) for r in self.conn.execute(sql, args)]

    def stream_summaries(self, owner: str, stream: str | None = None) -> dict[str, dict[str, Any]]:
        """Per stream of ``owner``: event count and time span."""
        sql = (
            "SELECT stream, COUNT(*), MIN(t_start), MAX(t_end) FROM events WHERE owner = ?"
            + (" AND stream = ?" if stream is not None else "")
            + " GROUP BY stream"
        )
        args = (owner,) if stream is None else (owner, stream)
        return {
            name: {"events": int(n), "start": round(t0, 3), "end": round(t1, 3)}
            for name, n, t0, t1 in self.conn.execute(sql, args)
        }

    def ids_in_scope(
        self,
        stream: str | None,
        owner: str | None,
        t0: float | None = None,
        t1: float | None = None,
    ) -> np.ndarray:
        where, args = self._scope(stream, owner, t0, t1)
        sql = f"SELECT id FROM events WHERE {' AND '.join(where) or '1'}"
        return np.fromiter((r[0] for r in self.conn.execute(sql, args)), dtype=np.int64)

    def count_in_scope(
        self, stream: str | None, owner: str | None, t0: float | None, t1: float | None
    ) -> int:
        where, args = self._scope(stream, owner, t0, t1)
        sql = f"SELECT COUNT(*) FROM events WHERE {' AND '.join(where) or '1'}"
        return int(self.conn.execute(sql, args).fetchone()[0])

    def vectors_in_scope(
        self,
        column: str,
        stream: str | None,
        owner: str | None,
        t0: float | None,
        t1: float | None,
    ) -> tuple[np.ndarray, list[bytes]]:
        """(ids, vector blobs) of the rows in a scope that have a ``column`` vector."""
        if column not in ("embedding", "text_embedding"):
            raise ValueError(column)
        where, args = self._scope(stream, owner, t0, t1)
        where.append(f"{column} IS NOT NULL")
        rows = self.conn.execute(
            f"SELECT id, {column} FROM events WHERE {' AND '.join(where)}", args
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def _scope(
        self, stream: str | None, owner: str | None, t0: float | None, t1: float | None
    ) -> tuple[list[str], list[Any]]:
        """WHERE clauses for events overlapping [t0, t1] in a stream/owner scope.

        Overlap needs ``t_end >= t0``, which no index serves; but no event is longer than the
        longest one stored (``meta.max_span``), so ``t_start >= t0 - max_span`` is implied and
        turns the filter into a range on the (stream, owner, t_start) index instead of a scan
        from the start of the stream.
        """
        where: list[str] = []
        args: list[Any] = []
        if stream is not None:
            where.append("stream = ?")
            args.append(stream)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if t0 is not None:
            where.append("t_end >= ?")
            args.append(t0)
            where.append("t_start >= ?")
            args.append(t0 - float(self.meta("max_span") or 0.0) - 1e-6)
        if t1 is not None:
            where.append("t_start <= ?")
            args.append(t1)
        return where, args

    def changed_since(self, seq: int, column: str) -> Iterator[tuple[int, bytes | None]]:
        """(id, vector blob) of every row changed after ``seq`` — for index replay."""
        if column not in ("embedding", "text_embedding"):
            raise ValueError(column)
        yield from self.conn.execute(
            f"SELECT id, {column} FROM events WHERE seq > ? ORDER BY seq", (seq,)
        )

    def current_seq(self) -> int:
        return int(self.meta("seq") or 0)

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        conn = self.conn
        streams = conn.execute(
            "SELECT stream, owner, COUNT(*), MIN(t_start), MAX(t_end), SUM(merge_count) "
            "FROM events GROUP BY stream, owner ORDER BY stream"
        ).fetchall()
        return {
            "events": self.count(),
            "merges": int(conn.execute("SELECT COUNT(*) FROM merges").fetchone()[0]),
            "captioned": int(
                conn.execute("SELECT COUNT(*) FROM events WHERE caption IS NOT NULL").fetchone()[0]
            ),
            "sources": int(conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0]),
            "streams": [
                {
                    "stream": s,
                    "owner": o,
                    "events": n,
                    "start": t0,
                    "end": t1,
                    "merges": int(m or 0),
                }
                for s, o, n, t0, t1, m in streams
            ],
            "schema_version": SCHEMA_VERSION,
            "seq": self.current_seq(),
            "db_bytes": self.path.stat().st_size if self.path.exists() else 0,
        }

    def source_status(self, source: str) -> str | None:
        row = self.conn.execute("SELECT status FROM sources WHERE source = ?", (source,)).fetchone()
        return None if row is None else row[0]


class _Transaction:
    """A write transaction holding the store's writer lock; commits (durably) on exit."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.conn = store.conn
        self.seq = 0
        self.max_span = 0.0

    def __enter__(self) -> _Transaction:
        self.store._write_lock.acquire()
        self.conn.execute("BEGIN IMMEDIATE")
        self.seq = self.store._next_seq(self.conn)
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self._write_max_span()
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
        finally:
            self.store._write_lock.release()

    def _widen_max_span(self, span: float) -> None:
        """Keep ``meta.max_span`` >= every event's length (see ``EventStore._scope``); written
        once, at commit, for the whole transaction."""
        self.max_span = max(self.max_span, float(span))

    def _write_max_span(self) -> None:
        if self.max_span > 0:
            self.conn.execute(
                "INSERT INTO meta VALUES ('max_span', ?) ON CONFLICT(key) DO UPDATE SET "
                "value = MAX(CAST(value AS REAL), CAST(excluded.value AS REAL))",
                (repr(self.max_span),),
            )

    def insert(self, values: dict[str, Any]) -> int:
        self._widen_max_span(values["end"] - values["start"])
        now = time.time()
        cursor = self.conn.execute(
            "INSERT INTO events (stream, owner, source, source_index, t_start, t_end, frames, "
            "embedding, keyframes, labels, boundaries, caption, text, text_embedding, "
            "merge_count, seq, created, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (
                values["stream"],
                values.get("owner", ""),
                values.get("source"),
                values.get("source_index"),
                values["start"],
                values["end"],
                values["frames"],
                _blob(values["embedding"]),
                json.dumps(values.get("keyframes", [])),
                json.dumps(values.get("labels", [])),
                json.dumps(values.get("boundaries", {})),
                values.get("caption"),
                values.get("text"),
                _blob(values.get("text_embedding")),
                self.seq,
                now,
                now,
            ),
        )
        return int(cursor.lastrowid)

    def merge_into(
        self,
        row: EventRow,
        *,
        start: float,
        end: float,
        frames: int,
        embedding: np.ndarray,
        keyframes: list[dict[str, Any]],
        boundaries: dict[str, Any],
        record: dict[str, Any],
        similarity: float | None,
    ) -> None:
        self._widen_max_span(end - start)
        self.conn.execute(
            "UPDATE events SET t_start = ?, t_end = ?, frames = ?, embedding = ?, keyframes = ?, "
            "boundaries = ?, merge_count = merge_count + 1, seq = ?, updated = ? WHERE id = ?",
            (
                start,
                end,
                frames,
                _blob(embedding),
                json.dumps(keyframes),
                json.dumps(boundaries),
                self.seq,
                time.time(),
                row.id,
            ),
        )
        self.conn.execute(
            "INSERT INTO merges (event_id, merged, similarity, at) VALUES (?, ?, ?, ?)",
            (row.id, json.dumps(record), similarity, time.time()),
        )

    def set_text(
        self, event_id: int, *, caption: str | None, text: str, text_embedding: np.ndarray
    ) -> bool:
        cursor = self.conn.execute(
            "UPDATE events SET caption = COALESCE(?, caption), text = ?, text_embedding = ?, "
            "seq = ?, updated = ? WHERE id = ?",
            (caption, text, _blob(text_embedding), self.seq, time.time(), event_id),
        )
        return cursor.rowcount == 1

    def delete_source(self, source: str) -> list[int]:
        ids = [r[0] for r in self.conn.execute("SELECT id FROM events WHERE source = ?", (source,))]
        if ids:
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"DELETE FROM merges WHERE event_id IN ({marks})", ids)
            self.conn.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
        self.conn.execute("DELETE FROM sources WHERE source = ?", (source,))
        return ids

    def delete_stream(self, stream: str, owner: str) -> list[int]:
        """Every event of ``(stream, owner)``, whatever its source, and its source records."""
        ids = [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM events WHERE stream = ? AND owner = ?", (stream, owner)
            )
        ]
        if ids:
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"DELETE FROM merges WHERE event_id IN ({marks})", ids)
            self.conn.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
        self.conn.execute("DELETE FROM sources WHERE stream = ? AND owner = ?", (stream, owner))
        return ids

    def begin_source(self, source: str, stream: str, owner: str, path: str | None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sources (source, stream, owner, path, status, events, started) "
            "VALUES (?, ?, ?, ?, 'ingesting', 0, ?)",
            (source, stream, owner, path, time.time()),
        )

    def finish_source(self, source: str, events: int) -> None:
        self.conn.execute(
            "UPDATE sources SET status = 'complete', events = ?, finished = ? WHERE source = ?",
            (events, time.time(), source),
        )
