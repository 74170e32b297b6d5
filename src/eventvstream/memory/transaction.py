"""Writes to the store: one durable commit per ``with store.transaction() as tx:`` block.

Every transaction takes the next global sequence number (``meta.seq``) and stamps it on every
row it changes, so the FAISS caches can find and replay whatever they missed (``caches.py``).
It holds the store's writer lock from ``BEGIN IMMEDIATE`` to ``COMMIT``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from eventvstream.memory.rows import INSERT_SQL, EventRow, blob, encode_new

if TYPE_CHECKING:
    from eventvstream.memory.store import EventStore


class Transaction:
    """A write transaction holding the store's writer lock; commits (durably) on exit."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.conn
        self.seq = 0
        self.max_span = 0.0

    def __enter__(self) -> Transaction:
        self.store.write_lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store.write_lock.release()
            raise
        self.seq = self._next_seq()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self._write_max_span()
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
        finally:
            self.store.write_lock.release()

    def _next_seq(self) -> int:
        self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")
        return int(self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

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

    # -- events --------------------------------------------------------------------------------
    def insert(self, values: dict[str, Any]) -> int:
        """A new slot from a value dict (see ``rows.encode_new``); returns its id."""
        self._widen_max_span(values["end"] - values["start"])
        cursor = self.conn.execute(INSERT_SQL, encode_new(values, seq=self.seq, now=time.time()))
        return int(cursor.lastrowid)  # type: ignore[arg-type]  # set by every INSERT

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
        """Widen slot ``row`` with a merged event, and record the merge in ``merges``."""
        self._widen_max_span(end - start)
        self.conn.execute(
            "UPDATE events SET t_start = ?, t_end = ?, frames = ?, embedding = ?, keyframes = ?, "
            "boundaries = ?, merge_count = merge_count + 1, seq = ?, updated = ? WHERE id = ?",
            (
                start,
                end,
                frames,
                blob(embedding),
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
            (caption, text, blob(text_embedding), self.seq, time.time(), event_id),
        )
        return cursor.rowcount == 1

    def _delete_events(self, ids: list[int]) -> None:
        if ids:
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"DELETE FROM merges WHERE event_id IN ({marks})", ids)
            self.conn.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)

    def delete_source(self, source: str) -> list[int]:
        ids = [r[0] for r in self.conn.execute("SELECT id FROM events WHERE source = ?", (source,))]
        self._delete_events(ids)
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
        self._delete_events(ids)
        self.conn.execute("DELETE FROM sources WHERE stream = ? AND owner = ?", (stream, owner))
        return ids

    # -- sources -------------------------------------------------------------------------------
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
