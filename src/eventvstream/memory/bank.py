"""The memory bank: every event of every stream, durable, consolidated and searchable.

One data directory holds ``evs.sqlite3`` (the source of truth), ``visual.faiss`` and
``text.faiss`` (caches of the event and caption/label-text embeddings) and ``index.json`` (the
sequence number each cache is complete up to). Opening replays rows changed since then; a
missing, corrupt or inconsistent cache is rebuilt from SQL with a log line. An event handed to
``add`` is durable when ``add`` returns.

Only one process may open a data directory for writing (an exclusive ``flock`` on ``.lock``),
because the FAISS caches live in that process's memory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.errors import EvsError
from eventvstream.events.types import Event
from eventvstream.memory.consolidation import SlotSummary, decide, merged
from eventvstream.memory.index import VectorIndex
from eventvstream.memory.store import EventRow, EventStore

log = logging.getLogger(__name__)

INDEXES = {"visual": "embedding", "text": "text_embedding"}


class MemoryLockedError(EvsError):
    code = "memory_locked"


@dataclass(frozen=True)
class Stored:
    """What ``add`` acknowledges: the slot id and whether the event merged into it."""

    id: int
    merged: bool
    similarity: float | None
    reason: str


@dataclass(frozen=True)
class Hit:
    event: EventRow
    score: float
    source: str  # which index matched: visual, text, time


def event_values(event: Event) -> dict[str, Any]:
    """The columns an :class:`~eventvstream.events.Event` fills (captions come later)."""
    labels = [[name, round(p, 4)] for name, p in event.labels[:20]]
    return {
        "start": event.start,
        "end": event.end,
        "frames": event.frame_count,
        "embedding": event.embedding,
        "keyframes": [k.to_dict() for k in event.keyframes],
        "labels": labels,
        "boundaries": {
            "opened_by": event.opened_by.to_dict(),
            "closed_by": event.closed_by.to_dict(),
        },
    }


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
        self.store = EventStore(self.dir / "evs.sqlite3")
        # Held across "commit to SQL, then update the caches" and across checkpoints, so a
        # saved index is never missing a change older than the sequence number saved with it.
        self._write_lock = threading.RLock()
        self.dims = self._dims(visual_dim)
        self.indexes: dict[str, VectorIndex] = {}
        self._changes = 0
        for name in INDEXES:
            if self.dims.get(name):
                self.indexes[name] = self._open_index(name, self.dims[name])

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

    def _index_path(self, name: str) -> Path:
        return self.dir / f"{name}.faiss"

    def _open_index(self, name: str, dim: int) -> VectorIndex:
        saved = _read_state(self.dir / "index.json")
        path = self._index_path(name)
        index: VectorIndex | None = None
        if path.exists() and name in saved:
            try:
                index = VectorIndex.load(
                    path, dim, exact_max=self.settings.exact_max, nprobe=self.settings.ivf_nprobe
                )
            except (RuntimeError, ValueError) as exc:
                log.warning("%s is unreadable (%s); rebuilding it from the database", path, exc)
        elif path.exists():
            log.warning("%s has no saved state; rebuilding it from the database", path)
        if index is None:
            return self._rebuild(name, dim)
        replayed = self._replay(index, name, int(saved[name]))
        if len(index) != self._vector_count(name):
            log.warning("%s disagrees with the database after replay; rebuilding it", path)
            return self._rebuild(name, dim)
        if replayed:
            log.info("%s: replayed %d changes made after its last save", path.name, replayed)
            self._changes += replayed  # the saved file is stale: save it again on close
        return index

    def _vector_count(self, name: str) -> int:
        column = INDEXES[name]
        sql = f"SELECT COUNT(*) FROM events WHERE {column} IS NOT NULL"
        return int(self.store.conn.execute(sql).fetchone()[0])

    def _replay(self, index: VectorIndex, name: str, since: int) -> int:
        ids, vectors = [], []
        for event_id, blob in self.store.changed_since(since, INDEXES[name]):
            if blob is not None:
                ids.append(event_id)
                vectors.append(np.frombuffer(blob, dtype=np.float32))
        if ids:
            index.upsert(np.array(ids), np.stack(vectors))
        return len(ids)

    def _rebuild(self, name: str, dim: int) -> VectorIndex:
        index = VectorIndex(dim, exact_max=self.settings.exact_max, nprobe=self.settings.ivf_nprobe)
        count = self._replay(index, name, -1)
        self._changes += max(count, 1)  # never saved in this form: save it on close
        if count:
            log.info("rebuilt the %s index from the database: %d vectors", name, count)
        return index

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
            self.indexes["visual"] = self._rebuild("visual", dim)
        elif dim != self.dims["visual"]:
            raise EvsError(
                f"event embedding is {dim}-d; this memory holds {self.dims['visual']}-d ones",
                code="dimension_mismatch",
            )
        results: list[Stored] = []
        touched: dict[int, np.ndarray] = {}
        last = self.store.last_of_stream(stream, owner)
        with self.store.transaction() as tx:
            for offset, value in enumerate(values):
                new = SlotSummary(
                    value["start"],
                    value["end"],
                    value["frames"],
                    np.asarray(value["embedding"], np.float32),
                )
                previous = (
                    SlotSummary(last.start, last.end, last.frames, last.embedding)
                    if last is not None
                    else None
                )
                decision = decide(
                    previous,
                    new,
                    threshold=self.settings.merge_threshold,
                    max_gap_s=self.settings.merge_max_gap_s,
                    enabled=self.settings.consolidate,
                )
                if decision.merge and last is not None and previous is not None:
                    slot = merged(previous, new)
                    boundaries = {
                        **last.boundaries,
                        "closed_by": value["boundaries"].get("closed_by"),
                    }
                    tx.merge_into(
                        last,
                        start=slot.start,
                        end=slot.end,
                        frames=slot.frames,
                        embedding=slot.embedding,
                        keyframes=last.keyframes + value["keyframes"],
                        boundaries=boundaries,
                        record={k: value[k] for k in ("start", "end", "frames", "boundaries")}
                        | {"source": source, "source_index": _index(first_index, offset)},
                        similarity=decision.similarity,
                    )
                    last.start, last.end, last.frames = slot.start, slot.end, slot.frames
                    last.embedding = slot.embedding
                    last.keyframes = last.keyframes + value["keyframes"]
                    last.boundaries = boundaries
                    touched[last.id] = slot.embedding
                    results.append(Stored(last.id, True, decision.similarity, decision.reason))
                    continue
                event_id = tx.insert(
                    value
                    | {
                        "stream": stream,
                        "owner": owner,
                        "source": source,
                        "source_index": _index(first_index, offset),
                    }
                )
                touched[event_id] = new.embedding
                last = EventRow(
                    event_id,
                    stream,
                    owner,
                    source,
                    None,
                    new.start,
                    new.end,
                    new.frames,
                    new.embedding,
                    value["keyframes"],
                    value["labels"],
                    value["boundaries"],
                    None,
                    None,
                    None,
                    0,
                    tx.seq,
                    0.0,
                    0.0,
                )
                results.append(Stored(event_id, False, decision.similarity, decision.reason))
        ids = np.fromiter(touched, dtype=np.int64)
        self.indexes["visual"].upsert(ids, np.stack(list(touched.values())))
        self._changed(len(values))
        return results

    def set_text(
        self, event_id: int, text: str, text_embedding: np.ndarray, *, caption: str | None = None
    ) -> None:
        """Attach a caption (or another description) and its sentence embedding to a slot."""
        vector = np.asarray(text_embedding, np.float32)
        with self._write_lock, self.store.transaction() as tx:
            if not tx.set_text(event_id, caption=caption, text=text, text_embedding=vector):
                raise EvsError(f"no event {event_id}", code="not_found")
        if "text" not in self.indexes:
            dims = json.loads(self.store.meta("dims") or "{}") | {"text": len(vector)}
            self.store.set_meta("dims", json.dumps(dims))
            self.dims = dims
            self.indexes["text"] = self._rebuild("text", len(vector))
        else:
            with self._write_lock:
                self.indexes["text"].upsert(np.array([event_id]), vector[None])
        self._changed(1)

    def begin_source(
        self, source: str, *, stream: str, owner: str = "", path: str | None = None
    ) -> bool:
        """Start ingesting a file. Returns False if it was already completely ingested
        (idempotent re-runs); a half-ingested earlier attempt is discarded first."""
        if self.store.source_status(source) == "complete":
            return False
        removed = self.forget_source(source)
        with self._write_lock, self.store.transaction() as tx:
            tx.begin_source(source, stream, owner, path)
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
            for index in self.indexes.values():
                index.remove(np.array(removed, dtype=np.int64))
        return len(removed)

    def forget_stream(self, stream: str, owner: str = "") -> int:
        """Delete every event of a stream (any source, live or file) and its source records;
        returns how many."""
        with self._write_lock:
            with self.store.transaction() as tx:
                removed = tx.delete_stream(stream, owner)
            for index in self.indexes.values():
                index.remove(np.array(removed, dtype=np.int64))
        return len(removed)

    def finish_source(self, source: str, events: int) -> None:
        with self.store.transaction() as tx:
            tx.finish_source(source, events)

    def _changed(self, count: int) -> None:
        """Checkpoint after ``checkpoint_every`` changes, or 5% of the index if that is more:
        a save rewrites the whole index (about 1 GB at 1M x 256-d), and replay on open covers
        whatever came after the last one."""
        self._changes += count
        size = max((len(index) for index in self.indexes.values()), default=0)
        if self._changes >= max(self.settings.checkpoint_every, size // 20):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save the FAISS caches atomically, then record the sequence they are complete to."""
        with self._write_lock:
            seq = self.store.current_seq()
            state = {}
            for name, index in self.indexes.items():
                index.save(self._index_path(name))
                state[name] = seq
            _write_state(self.dir / "index.json", state)
            self._changes = 0

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
            found = self._search_ids(query, index, k, stream, owner, t0, t1)
        rows = self.store.get_many([i for i, _ in found])
        return [Hit(rows[i], s, index) for i, s in found if i in rows]

    def _search_ids(
        self,
        query: np.ndarray,
        index: str,
        k: int,
        stream: str | None,
        owner: str | None,
        t0: float | None,
        t1: float | None,
    ) -> list[tuple[int, float]]:
        """Unscoped: the FAISS index. A small scope (a stream's hour, a user's events): exact
        search over that scope's own vectors, read from SQL — exact recall, and no id selector
        to build. A large scope: FAISS restricted to the scope's ids."""
        faiss_index = self.indexes[index]
        if any(v is not None for v in (stream, owner, t0, t1)):
            in_scope = self.store.count_in_scope(stream, owner, t0, t1)
            if in_scope == 0:
                return []
            if in_scope <= self.settings.exact_scope_max:
                ids, blobs = self.store.vectors_in_scope(INDEXES[index], stream, owner, t0, t1)
                if not blobs:
                    return []
                matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
                scores = matrix @ query
                top = np.argsort(-scores)[:k]
                return [(int(ids[i]), float(scores[i])) for i in top]
            if in_scope < len(faiss_index):
                allowed = self.store.ids_in_scope(stream, owner, t0, t1)
                scores, found = faiss_index.search(query[None], k, allowed_ids=allowed)
                return _pairs(found[0], scores[0])
        scores, found = faiss_index.search(query[None], k)
        return _pairs(found[0], scores[0])

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
        try:
            if self._changes:  # nothing new since the last save: leave the files alone
                self.checkpoint()
        finally:
            self.store.close()
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self) -> MemoryBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pairs(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]


def _index(first: int | None, offset: int) -> int | None:
    return None if first is None else first + offset


def _read_state(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
        return {k: int(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_state(path: Path, state: dict[str, int]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
