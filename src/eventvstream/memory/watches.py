"""Watches, stored: one row per watch, owner-scoped like streams.

The row keeps the watch's settings as JSON (``spec``; the serving layer owns their meaning) and
the sentence embedding of its text, with the embedder's name, so a restart does not re-embed
every watch and a different embedder is noticed and re-embeds.

Every change also writes a new ``watches_rev`` in ``alert_state``, in the same transaction: with
replicas on one database, a watch created, changed or deleted through one replica is noticed by
the others (one row read per poll) and their rules reloaded.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventvstream.memory.alertdb import AlertDatabase


@dataclass
class StoredWatch:
    id: str
    owner: str
    stream: str | None
    spec: dict[str, Any]
    vector: np.ndarray | None
    vector_model: str | None
    created: float
    updated: float


def _watch(row: tuple[Any, ...]) -> StoredWatch:
    vector = None if row[4] is None else np.frombuffer(bytes(row[4]), dtype=np.float32).copy()
    return StoredWatch(row[0], row[1], row[2], json.loads(row[3]), vector, row[5], row[6], row[7])


_COLUMNS = "id, owner, stream, spec, vector, vector_model, created, updated"
REV_KEY = "watches_rev"


class WatchStore:
    def __init__(self, db: AlertDatabase) -> None:
        self.db = db

    def create(
        self,
        watch_id: str,
        owner: str,
        stream: str | None,
        spec: dict[str, Any],
        vector: np.ndarray | None,
        vector_model: str | None,
    ) -> StoredWatch:
        now = time.time()
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        with self.db.write() as conn:
            conn.execute(
                f"INSERT INTO watches ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (watch_id, owner, stream, json.dumps(spec), blob, vector_model, now, now),
            )
            self._bump(conn)
        found = self.get(owner, watch_id)
        assert found is not None
        return found

    def update(
        self,
        owner: str,
        watch_id: str,
        stream: str | None,
        spec: dict[str, Any],
        vector: np.ndarray | None,
        vector_model: str | None,
    ) -> StoredWatch | None:
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE watches SET stream = ?, spec = ?, vector = ?, vector_model = ?, "
                "updated = ? WHERE id = ? AND owner = ?",
                (stream, json.dumps(spec), blob, vector_model, time.time(), watch_id, owner),
            )
            self._bump(conn)
        return self.get(owner, watch_id) if cursor.rowcount else None

    def delete(self, owner: str, watch_id: str) -> bool:
        with self.db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM watches WHERE id = ? AND owner = ?", (watch_id, owner)
            )
            self._bump(conn)
        return cursor.rowcount == 1

    def _bump(self, conn: Any) -> None:
        self.db.set_state(conn, REV_KEY, uuid.uuid4().hex)

    def revision(self) -> str | None:
        """Changes whenever any watch does (through any process on this database)."""
        return self.db.state(REV_KEY)

    def get(self, owner: str, watch_id: str) -> StoredWatch | None:
        row = self.db.one(
            f"SELECT {_COLUMNS} FROM watches WHERE id = ? AND owner = ?", (watch_id, owner)
        )
        return None if row is None else _watch(row)

    def of_owner(self, owner: str) -> list[StoredWatch]:
        rows = self.db.rows(
            f"SELECT {_COLUMNS} FROM watches WHERE owner = ? ORDER BY created, id", (owner,)
        )
        return [_watch(r) for r in rows]

    def all(self) -> list[StoredWatch]:
        rows = self.db.rows(f"SELECT {_COLUMNS} FROM watches ORDER BY created, id")
        return [_watch(r) for r in rows]

    def count(self, owner: str) -> int:
        return int(self.db.one("SELECT COUNT(*) FROM watches WHERE owner = ?", (owner,))[0])
