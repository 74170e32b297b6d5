"""Writes to the store: one durable commit per ``with store.transaction() as tx:`` block.

Every transaction first takes the next global sequence number (``meta.seq``) and stamps it on
every row it changes (and every deletion), so the FAISS caches — this process's and other
processes' — can find and replay whatever they missed (``caches.py``). Taking it writes the
``meta`` row, which holds that row's lock until commit: transactions commit in sequence order,
on SQLite (one writer at a time anyway) and on PostgreSQL (many writers), so a reader that sees
sequence *S* committed sees every change up to *S*. The statements are the same on both; what
differs (ids, connections, locks) is the backend's (``backends.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from eventvstream.memory.rows import (
    INSERT_SQL,
    EventRow,
    blob,
    decode_row,
    encode_new,
)

if TYPE_CHECKING:
    from eventvstream.memory.backends import Connection
    from eventvstream.memory.store import EventStore


class Transaction:
    """One write transaction; commits (durably) on a clean exit, rolls back on an exception.

    ``batch=n`` announces up to ``n`` inserts (``MemoryBank.add_many``): a backend that can
    pipeline (PostgreSQL) then queues the sequence bump, the id reservation, the reads and the
    inserts and waits for the server only when a result is needed: two round trips for a batch
    (the stream's last slot, then ``COMMIT``) instead of one per statement. ``seq`` is only
    read when used, so the sequence bump rides along with the first read.
    """

    def __init__(self, store: EventStore, *, batch: int = 0) -> None:
        self.store = store
        self.backend = store.backend
        self._batch = batch
        self._context: AbstractContextManager[Connection] = self.backend.writer(pipeline=batch > 0)
        self.conn: Connection
        self._seq: int | None = None
        self._seq_cursor: Any = None
        self.max_span = 0.0
        self._ids: list[int] = []  # reserved ahead for a batch (backends that can)
        self._fetch_ids: Callable[[], list[int]] | None = None
        self._pending: list[tuple[Any, ...]] = []  # inserts held back to send together

    def __enter__(self) -> Transaction:
        self.conn = self._context.__enter__()
        try:
            # Takes the next sequence number; locks the ``meta.seq`` row until this commits.
            self._seq_cursor = self.conn.execute(
                "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
                "WHERE key = 'seq' RETURNING value"
            )
            if not self.backend.pipelines:
                self._resolve_seq()  # SQLite: finish the statement before the next one
            if self._batch:
                self._fetch_ids = self.backend.reserve_ids(self.conn, self._batch)
        except BaseException as exc:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            try:
                self._flush()
                self._write_max_span()
            except BaseException as error:
                self._context.__exit__(type(error), error, error.__traceback__)
                raise
        self._context.__exit__(exc_type, exc, traceback)  # COMMIT (and the pipeline's sync)
        if exc_type is None:
            self._resolve_seq()
            self.store.known_max_span = max(self.store.known_max_span, self.max_span)

    @property
    def seq(self) -> int:
        """This transaction's sequence number (read from the server on first use)."""
        return self._resolve_seq()

    def _resolve_seq(self) -> int:
        if self._seq is None:
            self._seq = int(self._seq_cursor.fetchall()[0][0])
        return self._seq

    def _flush(self) -> None:
        """Send the inserts held back (before anything that may read them)."""
        if self._pending:
            self.backend.insert_events(self.conn, self._pending)
            self._pending = []

    def last_of_stream(self, stream: str, owner: str) -> EventRow | None:
        """The stream's newest slot as this transaction sees it (row-locked where the backend
        can): what a new event may merge into."""
        from eventvstream.memory.store import LAST_OF_STREAM

        row = self.conn.execute(
            LAST_OF_STREAM + self.backend.lock_clause, (stream, owner)
        ).fetchone()
        return None if row is None else decode_row(row)

    def _widen_max_span(self, span: float) -> None:
        """Keep ``meta.max_span`` >= every event's length (see ``EventStore._scope``); written
        once, at commit, for the whole transaction."""
        self.max_span = max(self.max_span, float(span))

    def _write_max_span(self) -> None:
        # Only when it grows past what this process knows is committed: a round trip saved
        # on almost every transaction (events are about the same length).
        if self.max_span > self.store.known_max_span:
            self.conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'max_span' "
                "AND CAST(value AS DOUBLE PRECISION) < ?",
                (repr(self.max_span), self.max_span),
            )

    # -- events --------------------------------------------------------------------------------
    def insert(self, values: dict[str, Any]) -> int:
        """A new slot from a value dict (see ``rows.encode_new``); returns its id."""
        self._widen_max_span(values["end"] - values["start"])
        params = encode_new(values, seq=self.seq, now=time.time())
        if self._fetch_ids is not None:
            self._ids, self._fetch_ids = self._fetch_ids(), None
        if self._ids:
            event_id = self._ids.pop()
            self._pending.append((event_id, *params))
            return event_id
        return self.backend.insert_id(self.conn, INSERT_SQL, params)

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
        self._flush()  # ``row`` may be an insert of this batch
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
            self.conn.execute(
                f"INSERT INTO deletions (event_id, seq) SELECT id, ? FROM events "
                f"WHERE id IN ({marks})",
                [self.seq, *ids],
            )
            self.conn.execute(f"DELETE FROM merges WHERE event_id IN ({marks})", ids)
            self.conn.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)

    def delete_source(self, source: str) -> list[int]:
        rows = self.conn.execute("SELECT id FROM events WHERE source = ?", (source,)).fetchall()
        ids = [r[0] for r in rows]
        self._delete_events(ids)
        self.conn.execute("DELETE FROM sources WHERE source = ?", (source,))
        return ids

    def delete_stream(self, stream: str, owner: str) -> list[int]:
        """Every event of ``(stream, owner)``, whatever its source, and its source records."""
        rows = self.conn.execute(
            "SELECT id FROM events WHERE stream = ? AND owner = ?", (stream, owner)
        ).fetchall()
        ids = [r[0] for r in rows]
        self._delete_events(ids)
        self.conn.execute("DELETE FROM sources WHERE stream = ? AND owner = ?", (stream, owner))
        return ids

    # -- sources -------------------------------------------------------------------------------
    def begin_source(self, source: str, stream: str, owner: str, path: str | None) -> None:
        self.conn.execute(
            "INSERT INTO sources (source, stream, owner, path, status, events, started) "
            "VALUES (?, ?, ?, ?, 'ingesting', 0, ?) ON CONFLICT (source) DO UPDATE SET "
            "stream = excluded.stream, owner = excluded.owner, path = excluded.path, "
            "status = excluded.status, events = 0, started = excluded.started, finished = NULL",
            (source, stream, owner, path, time.time()),
        )

    def finish_source(self, source: str, events: int) -> None:
        self.conn.execute(
            "UPDATE sources SET status = 'complete', events = ?, finished = ? WHERE source = ?",
            (events, time.time(), source),
        )
