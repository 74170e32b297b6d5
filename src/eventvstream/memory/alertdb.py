"""The alert tables, in the memory bank's own database (SQLite file or shared PostgreSQL).

Why the same database: an alert is only as durable as the event it cites, and one database is
one thing to back up (and, on PostgreSQL, one thing every replica shares). The tables are part
of the store's schema (``schema.MIGRATIONS[5]``), migrated with it on both backends; this is the
small access layer the alert stores (``watches.py``, ``outbox.py``, the keyframe store) share.
Same durability rules as the store: a write block is one transaction, committed durably (WAL
with ``synchronous=FULL`` on SQLite, the WAL flushed on PostgreSQL) before it returns, so an
alert committed to the outbox survives ``kill -9`` and power loss.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventvstream.memory.backends import Backend, Connection


class AlertDatabase:
    """Reads and write transactions on the alert tables, over the bank's backend (which owns
    the connections: ``close`` is the bank's)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One durable transaction (committed when the block exits without error)."""
        with self.backend.writer() as conn:
            yield conn

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self.backend.reader() as conn:
            return conn.execute(sql, args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self.backend.reader() as conn:
            return conn.execute(sql, args).fetchone()

    def changed(self, after: int, head: int, limit: int) -> tuple[list[int], int]:
        """Ids of events changed after sequence ``after`` up to ``head``, in sequence order,
        and the sequence they cover; never splits one commit's changes between two batches
        (the alert engine's and each replica's live fan-out's follow)."""
        rows = self.rows(
            "SELECT id, seq FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after, head, limit),
        )
        if len(rows) < limit:
            return [r[0] for r in rows], head
        last = rows[-1][1]
        kept = [r for r in rows if r[1] < last]
        if kept:
            return [r[0] for r in kept], last - 1
        same = self.rows("SELECT id FROM events WHERE seq = ?", (last,))
        return [r[0] for r in same], last

    def state(self, key: str) -> str | None:
        row = self.one("SELECT value FROM alert_state WHERE key = ?", (key,))
        return None if row is None else row[0]

    def set_state(self, conn: Connection, key: str, value: str) -> None:
        """Inside a :meth:`write` block."""
        conn.execute(
            "INSERT INTO alert_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
