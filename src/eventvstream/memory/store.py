"""The SQL store: the memory bank's source of truth, and the queries on it.

The store sits on a backend (``backends.py``: an SQLite file, or a shared PostgreSQL
database); its queries are written once for both. Durability: a committed transaction
survives a ``kill -9`` or power loss, and the caller is told "stored" only after the commit
returns. Writes go through ``transaction()`` (``transaction.py``); the schema and its
migrations are in ``schema.py``; how a row is encoded is in ``rows.py``. This module holds the
reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.memory.backends import Backend, SqliteBackend
from eventvstream.memory.rows import COLUMNS, EventRow, decode_row, vectors_of
from eventvstream.memory.schema import SCHEMA_VERSION, check_and_migrate
from eventvstream.memory.transaction import Transaction


class EventStore:
    """Thread-safe reads and writes on one backend (a path means an SQLite file)."""

    def __init__(self, backend: Backend | Path) -> None:
        self.backend: Backend = SqliteBackend(backend) if isinstance(backend, Path) else backend
        check_and_migrate(self.backend)
        # ``meta.max_span`` only grows: a transaction whose events are no longer than a value
        # this process saw committed need not write it (``Transaction._write_max_span``).
        self.known_max_span = 0.0

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's SQLite connection (tools and tests that inspect the file)."""
        if not isinstance(self.backend, SqliteBackend):
            raise TypeError("a raw connection is only available on the sqlite backend")
        return self.backend.conn

    def close(self) -> None:
        self.backend.close()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self.backend.reader() as conn:
            return conn.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self.backend.reader() as conn:
            return conn.execute(sql, args).fetchone()

    # -- meta ----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.backend.writer() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- writes ------------------------------------------------------------------------------
    def transaction(self, *, batch: int = 0) -> Transaction:
        """``with store.transaction() as tx:`` — one durable commit for many changes
        (``batch``: up to that many inserts are coming, see ``Transaction``)."""
        return Transaction(self, batch=batch)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, event_id: int) -> EventRow | None:
        row = self._one(f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,))
        return None if row is None else decode_row(row)

    def get_many(self, ids: Sequence[int]) -> dict[int, EventRow]:
        result: dict[int, EventRow] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._rows(f"SELECT {COLUMNS} FROM events WHERE id IN ({marks})", part):
                result[row[0]] = decode_row(row)
        return result

    def last_of_stream(self, stream: str, owner: str) -> EventRow | None:
        row = self._one(LAST_OF_STREAM, (stream, owner))
        return None if row is None else decode_row(row)

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
        sql = f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY t_start, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [decode_row(r) for r in self._rows(sql, args)]

    def latest(
        self, *, stream: str | None = None, owner: str | None = None, limit: int = 5
    ) -> list[EventRow]:
        """The ``limit`` events that ended last in a scope, newest first ("what is happening
        now")."""
        where, args = self._scope(stream, owner, None, None)
        sql = (
            f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where) or '1 = 1'} "
            f"ORDER BY t_end DESC, id DESC LIMIT {int(limit)}"
        )
        return [decode_row(r) for r in self._rows(sql, args)]

    def stream_time_at(
        self, stream: str, owner: str, wall: float, *, gap: str = "next"
    ) -> float | None:
        """The stream time that was Unix time ``wall`` on a live stream (``wall_start`` set),
        None when the stream has no wall-clock times. Within an event, its stream time; in a
        gap between two (an outage, a restart: stream time continued just after the last event
        while the wall clock went on), the start of the next one (``gap="next"``, for the start
        of a window) or the end of the previous one (``"previous"``, for its end); before the
        first event, its start. A stream's events are in the same order on both clocks."""
        scope = "stream = ? AND owner = ? AND wall_start IS NOT NULL"
        before = self._one(
            f"SELECT t_start, t_end, wall_start FROM events WHERE {scope} AND wall_start <= ? "
            "ORDER BY wall_start DESC LIMIT 1",
            (stream, owner, wall),
        )
        if before is not None and wall - before[2] <= before[1] - before[0]:
            return float(before[0] + (wall - before[2]))
        if gap == "previous" and before is not None:
            return float(before[1])
        after = self._one(
            f"SELECT t_start FROM events WHERE {scope} AND wall_start > ? "
            "ORDER BY wall_start LIMIT 1",
            (stream, owner, wall),
        )
        if after is not None:
            return float(after[0])
        if before is not None:  # after the last event: past its end
            return float(before[0] + (wall - before[2]))
        return None

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
            for name, n, t0, t1 in self._rows(sql, args)
        }

    def ids_in_scope(
        self,
        stream: str | None,
        owner: str | None,
        t0: float | None = None,
        t1: float | None = None,
    ) -> np.ndarray:
        where, args = self._scope(stream, owner, t0, t1)
        sql = f"SELECT id FROM events WHERE {' AND '.join(where) or '1 = 1'}"
        return np.fromiter((r[0] for r in self._rows(sql, args)), dtype=np.int64)

    def count_in_scope(
        self, stream: str | None, owner: str | None, t0: float | None, t1: float | None
    ) -> int:
        where, args = self._scope(stream, owner, t0, t1)
        sql = f"SELECT COUNT(*) FROM events WHERE {' AND '.join(where) or '1 = 1'}"
        return int(self._one(sql, args)[0])

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
        rows = self._rows(f"SELECT id, {column} FROM events WHERE {' AND '.join(where)}", args)
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

    def vectors_since(
        self, seq: int, column: str, dim: int, *, chunk_rows: int = 32_768
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every row with a ``column`` vector changed after ``seq``, in chunks
        of up to ``chunk_rows``: for index replay, and (``seq < 0``) a rebuild of a whole cache.

        One statement, so one snapshot: each id comes once, in no particular order (the caller
        upserts, and upserts of distinct ids commute; an ``ORDER BY seq`` cost PostgreSQL a sort
        of every row on disk). A rebuild reads the table in storage order instead of walking
        the ``seq`` index. The backend streams the rows (``Backend.read_chunks``: a binary
        server-side cursor on PostgreSQL), so the whole result is never held as rows at once.
        """
        if column not in ("embedding", "text_embedding"):
            raise ValueError(column)
        sql = f"SELECT id, {column} FROM events WHERE {column} IS NOT NULL"
        args: tuple[Any, ...] = ()
        if seq >= 0:
            sql += " AND seq > ?"
            args = (seq,)
        for rows in self.backend.read_chunks(sql, args, chunk_rows):
            yield vectors_of(rows, dim, column)

    def deleted_since(self, seq: int) -> list[int]:
        """Ids of the events deleted after ``seq`` — for index replay."""
        return [r[0] for r in self._rows("SELECT event_id FROM deletions WHERE seq > ?", (seq,))]

    def count_vectors(self, column: str) -> int:
        """How many rows have a ``column`` vector: what a complete cache of it must hold."""
        if column not in ("embedding", "text_embedding"):
            raise ValueError(column)
        if column == "embedding":  # NOT NULL: a count any index answers, not a read of every row
            return self.count()
        sql = f"SELECT COUNT(*) FROM events WHERE {column} IS NOT NULL"
        return int(self._one(sql)[0])

    def current_seq(self) -> int:
        return int(self.meta("seq") or 0)

    def count(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM events")[0])

    def stats(self) -> dict[str, Any]:
        streams = self._rows(
            "SELECT stream, owner, COUNT(*), MIN(t_start), MAX(t_end), SUM(merge_count) "
            "FROM events GROUP BY stream, owner ORDER BY stream"
        )
        return {
            "events": self.count(),
            "merges": int(self._one("SELECT COUNT(*) FROM merges")[0]),
            "captioned": int(self._one("SELECT COUNT(*) FROM events WHERE caption IS NOT NULL")[0]),
            "sources": int(self._one("SELECT COUNT(*) FROM sources")[0]),
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
            "backend": self.backend.name,
            "database": self.backend.describe(),
            "db_bytes": self.backend.size_bytes(),
        }

    def source_status(self, source: str) -> str | None:
        row = self._one("SELECT status FROM sources WHERE source = ?", (source,))
        return None if row is None else row[0]


# The stream's newest slot: what consolidation merges into (``transaction.py`` appends the
# backend's row lock when it reads it inside a write).
LAST_OF_STREAM = (
    f"SELECT {COLUMNS} FROM events WHERE stream = ? AND owner = ? "
    "ORDER BY t_end DESC, id DESC LIMIT 1"
)
