"""The memory bank: every event of every stream, durable, consolidated and searchable.

The source of truth is SQL (``store.py``): ``evs.sqlite3`` in the data directory, or a shared
PostgreSQL database (``memory.backend``, ``backends.py``). The data directory also holds this
process's FAISS caches ``visual.faiss`` and ``text.faiss`` with ``index.json`` (their lifecycle:
``caches.py``) and ``.lock``. An event handed to ``add`` is durable when ``add`` returns. Only
one process may open a data directory (an exclusive ``flock`` on ``.lock``), because the caches
live in that process's memory; on SQLite that makes it the only writer of the file. On
PostgreSQL many processes (each with its own data directory) share one database: each follows
the shared change sequence in a background thread, so another process's commit is searchable
here within ``memory.follow_interval_s`` plus the replay.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.errors import EvsError
from eventvstream.events.types import Event
from eventvstream.memory.backends import open_backend
from eventvstream.memory.batches import Stored, store_batch
from eventvstream.memory.caches import INDEXES, IndexCaches
from eventvstream.memory.follower import Follower
from eventvstream.memory.index import VectorIndex
from eventvstream.memory.rows import EventRow, event_values
from eventvstream.memory.search import nearest_ids
from eventvstream.memory.store import EventStore

log = logging.getLogger(__name__)


class MemoryLockedError(EvsError):
    code = "memory_locked"


@dataclass(frozen=True)
class Hit:
    event: EventRow
    score: float
    source: str  # which index matched: visual, text, time


class MemoryBank:
    def __init__(self, settings: MemorySettings, *, visual_dim: int | None = None) -> None:
        self.settings = settings
        self.dir = Path(settings.data_dir).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.dir / ".lock", "a+")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise MemoryLockedError(
                f"{self.dir} is in use by another evs process; stop it or use another data_dir"
            ) from None
        try:
            self.store = EventStore(open_backend(settings, self.dir))
            # Held across "commit to SQL, then update the caches", across following other
            # processes' commits and across checkpoints, so a saved index is never missing a
            # change older than the sequence number saved with it.
            self._write_lock = threading.RLock()
            self.dims = self._dims(visual_dim)
            self.caches = IndexCaches(self.dir, self.store, settings)
            for name in INDEXES:
                if self.dims.get(name):
                    self.caches.open(name, self.dims[name])
        except BaseException:
            self._unlock()
            raise
        self._follower: Follower | None = None
        if self.store.backend.shared:
            self._follower = Follower(
                self.follow, settings.follow_interval_s, self.store.backend.describe()
            )

    @property
    def indexes(self) -> dict[str, VectorIndex]:
        """The open FAISS caches by name (``visual``, ``text``)."""
        return self.caches.indexes

    # -- opening -------------------------------------------------------------------------------
    def _dims(self, visual_dim: int | None) -> dict[str, int]:
        stored = json.loads(self.store.meta("dims") or "{}")
        if visual_dim is not None:
            if stored.get("visual") not in (None, visual_dim):
                raise EvsError(
                    f"{self.dir} holds {stored['visual']}-d visual embeddings; this encoder "
                    f"makes {visual_dim}-d ones. Use another data_dir per encoder.",
                    code="dimension_mismatch",
                )
            stored["visual"] = visual_dim
            self.store.set_meta("dims", json.dumps(stored))
        return stored

    # -- writing -------------------------------------------------------------------------------
    def add(
        self,
        event: Event | dict[str, Any],
        *,
        stream: str,
        owner: str = "",
        source: str | None = None,
        source_index: int | None = None,
    ) -> Stored:
        """Store one event (merging it into the stream's last slot when consolidation says so).
        Durable when this returns."""
        return self.add_many(
            [event], stream=stream, owner=owner, source=source, first_index=source_index
        )[0]

    def add_many(
        self,
        events: list[Event | dict[str, Any]],
        *,
        stream: str,
        owner: str = "",
        source: str | None = None,
        first_index: int | None = None,
    ) -> list[Stored]:
        """Store a batch with one durable commit (group commit: many events per fsync)."""
        if not events:
            return []
        with self._write_lock:
            return self._add_many(events, stream, owner, source, first_index)

    def _add_many(
        self,
        events: list[Event | dict[str, Any]],
        stream: str,
        owner: str,
        source: str | None,
        first_index: int | None,
    ) -> list[Stored]:
        values = [event_values(e) if isinstance(e, Event) else dict(e) for e in events]
        dim = len(values[0]["embedding"])
        if "visual" not in self.indexes:
            self.dims = self._dims(dim)
            self.caches.rebuild("visual", dim)
        elif dim != self.dims["visual"]:
            raise EvsError(
                f"event embedding is {dim}-d; this memory holds {self.dims['visual']}-d ones",
                code="dimension_mismatch",
            )
        batch = store_batch(
            self.store,
            self.settings,
            values,
            stream=stream,
            owner=owner,
            source=source,
            first_index=first_index,
        )
        ids = np.fromiter(batch.touched, dtype=np.int64)
        self.indexes["visual"].upsert(ids, np.stack(list(batch.touched.values())))
        self.caches.advance(batch.seq)
        self._changed(len(values))
        return batch.stored

    def set_text(
        self, event_id: int, text: str, text_embedding: np.ndarray, *, caption: str | None = None
    ) -> None:
        """Attach a caption (or another description) and its sentence embedding to a slot."""
        vector = np.asarray(text_embedding, np.float32)
        with self._write_lock:
            with self.store.transaction() as tx:
                if not tx.set_text(event_id, caption=caption, text=text, text_embedding=vector):
                    raise EvsError(f"no event {event_id}", code="not_found")
            if "text" not in self.indexes:
                dims = json.loads(self.store.meta("dims") or "{}") | {"text": len(vector)}
                self.store.set_meta("dims", json.dumps(dims))
                self.dims = dims
                self.caches.rebuild("text", len(vector))
            else:
                self.indexes["text"].upsert(np.array([event_id]), vector[None])
            self.caches.advance(tx.seq)
        self._changed(1)

    def begin_source(
        self, source: str, *, stream: str, owner: str = "", path: str | None = None
    ) -> bool:
        """Start ingesting a file. Returns False if it was already completely ingested
        (idempotent re-runs); a half-ingested earlier attempt is discarded first."""
        if self.store.source_status(source) == "complete":
            return False
        removed = self.forget_source(source)
        with self._write_lock:
            with self.store.transaction() as tx:
                tx.begin_source(source, stream, owner, path)
            self.caches.advance(tx.seq)
        if removed:
            log.info(
                "discarded %d events of an unfinished earlier ingest of %s", removed, path or source
            )
        return True

    def forget_source(self, source: str) -> int:
        """Delete every event stored from ``source`` (and the record of it); returns how many."""
        with self._write_lock:
            with self.store.transaction() as tx:
                removed = tx.delete_source(source)
            self.caches.remove(removed)
            self.caches.advance(tx.seq)
        return len(removed)

    def forget_stream(self, stream: str, owner: str = "") -> int:
        """Delete every event of a stream (any source, live or file) and its source records;
        returns how many."""
        with self._write_lock:
            with self.store.transaction() as tx:
                removed = tx.delete_stream(stream, owner)
            self.caches.remove(removed)
            self.caches.advance(tx.seq)
        return len(removed)

    def finish_source(self, source: str, events: int) -> None:
        with self._write_lock:
            with self.store.transaction() as tx:
                tx.finish_source(source, events)
            self.caches.advance(tx.seq)

    def _changed(self, count: int) -> None:
        if self.caches.note_changes(count):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save the FAISS caches atomically, then record the sequence they are complete to."""
        with self._write_lock:
            self.caches.save()

    # -- following other processes (shared backends) ------------------------------------------
    def follow(self) -> int:
        """Bring the caches up to every change committed so far, by this process or another
        (a new index another process started is opened here too); returns how many vectors
        changed. Runs every ``memory.follow_interval_s`` on a shared backend."""
        with self._write_lock:
            if self.caches.applied is not None and self.store.current_seq() == self.caches.applied:
                return 0
            stored = json.loads(self.store.meta("dims") or "{}")
            for name in INDEXES:
                if stored.get(name) and name not in self.indexes:
                    self.dims[name] = stored[name]
                    self.caches.rebuild(name, stored[name])
            changed = self.caches.catch_up()
        if changed:
            self._changed(changed)
        return changed

    # -- reading -------------------------------------------------------------------------------
    def get(self, event_id: int) -> EventRow | None:
        return self.store.get(event_id)

    def events(
        self,
        *,
        stream: str | None = None,
        owner: str | None = None,
        t0: float | None = None,
        t1: float | None = None,
        limit: int | None = None,
    ) -> list[EventRow]:
        return self.store.query(stream=stream, owner=owner, t0=t0, t1=t1, limit=limit)

    def latest(
        self, *, stream: str | None = None, owner: str | None = None, limit: int = 5
    ) -> list[EventRow]:
        return self.store.latest(stream=stream, owner=owner, limit=limit)

    def last_of_stream(self, stream: str, owner: str = "") -> EventRow | None:
        return self.store.last_of_stream(stream, owner)

    def stream_time_at(
        self, stream: str, owner: str, wall: float, *, gap: str = "next"
    ) -> float | None:
        """The stream time that was Unix time ``wall`` (live streams; None without wall
        times); see ``EventStore.stream_time_at``."""
        return self.store.stream_time_at(stream, owner, wall, gap=gap)

    def count(self, *, stream: str | None = None, owner: str | None = None) -> int:
        return self.store.count_in_scope(stream, owner, None, None)

    def stream_summaries(self, owner: str, stream: str | None = None) -> dict[str, dict[str, Any]]:
        """Per stream of ``owner``: event count and time span."""
        return self.store.stream_summaries(owner, stream)

    def search(
        self,
        vector: np.ndarray,
        *,
        index: str = "visual",
        k: int = 10,
        stream: str | None = None,
        owner: str | None = None,
        t0: float | None = None,
        t1: float | None = None,
    ) -> list[Hit]:
        """Nearest events to ``vector`` in the ``visual`` or ``text`` index, within a scope."""
        if index not in self.indexes:
            return []
        query = np.asarray(vector, np.float32)
        with self._write_lock:  # FAISS indexes are not safe to read while another thread writes
            found = nearest_ids(
                self.store,
                self.indexes[index],
                INDEXES[index],
                query,
                k,
                stream=stream,
                owner=owner,
                t0=t0,
                t1=t1,
                exact_scope_max=self.settings.exact_scope_max,
            )
        rows = self.store.get_many([i for i, _ in found])
        return [Hit(rows[i], s, index) for i, s in found if i in rows]

    def export(
        self, *, stream: str | None = None, owner: str | None = None, with_embedding: bool = False
    ) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            page = self.store.query(stream=stream, owner=owner, limit=1000, after_id=after)
            if not page:
                return
            for row in page:
                yield row.to_dict(with_embedding=with_embedding)
            after = max(row.id for row in page)

    def stats(self) -> dict[str, Any]:
        stats = self.store.stats()
        stats["data_dir"] = str(self.dir)
        stats["indexes"] = {
            n: {"vectors": len(i), "kind": i.kind, "dim": i.dim} for n, i in self.indexes.items()
        }
        return stats

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._lock_file.closed:
            return
        if self._follower is not None:
            self._follower.stop()
        try:
            if self.caches.unsaved:  # nothing new since the last save: leave the files alone
                self.checkpoint()
        finally:
            self.store.close()
            self._unlock()

    def _unlock(self) -> None:
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def __enter__(self) -> MemoryBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
