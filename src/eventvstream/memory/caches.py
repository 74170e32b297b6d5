"""The lifecycle of the FAISS caches of one data directory: load, replay, rebuild, save.

``visual.faiss`` and ``text.faiss`` are caches of the ``embedding`` and ``text_embedding``
columns of the SQL store, never the truth. ``applied`` is the change sequence (``meta.seq``)
the open caches are complete up to, and ``index.json`` records it for each saved cache.
Opening a cache loads the file and replays every row changed (and every event deleted) after
that sequence; a missing, unreadable or inconsistent cache (its size disagrees with SQL after
replay) is rebuilt from SQL with a log line. A checkpoint saves every cache atomically, then
the sequence: a crash between the two only means more replay next time.

Transactions commit in sequence order (``transaction.py``), so "read the committed sequence
*S*, then replay everything after ``applied``" leaves the caches complete up to *S*
(``catch_up``): that is how a process follows other processes' writes to a shared
PostgreSQL database, and how a process's own writes are checked for gaps (``advance``).

The caller (``MemoryBank``) holds its writer lock around ``save``, ``catch_up`` and "commit to
SQL, then update the caches", so a saved cache never lacks a change older than its sequence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.fsutil import write_atomic
from eventvstream.memory.index import VectorIndex
from eventvstream.memory.store import EventStore

log = logging.getLogger(__name__)

# cache name -> the SQL column it caches
INDEXES = {"visual": "embedding", "text": "text_embedding"}
STATE_FILE = "index.json"
# Vectors per chunk of a replay (32 MiB: 32,768 rows of 256-d): large enough that the per-chunk
# round trip and FAISS call cost nothing, small enough that no copy of the whole is made.
REPLAY_CHUNK_BYTES = 32 << 20


class IndexCaches:
    """The open caches (``indexes``) and how many changes they hold beyond their saved files."""

    def __init__(self, directory: Path, store: EventStore, settings: MemorySettings) -> None:
        self.dir = directory
        self.store = store
        self.settings = settings
        self.indexes: dict[str, VectorIndex] = {}
        self.unsaved = 0  # changes since the last save; nonzero means "save on close"
        self.applied: int | None = None  # every open cache holds every change up to this

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.faiss"

    # -- opening -------------------------------------------------------------------------------
    def open(self, name: str, dim: int) -> VectorIndex:
        """Load cache ``name`` and bring it up to date with SQL, or rebuild it."""
        saved = read_state(self.dir / STATE_FILE)
        seq = self.store.current_seq()  # committed before the replay below starts
        path = self.path(name)
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
            return self.rebuild(name, dim)
        replayed = self._replay(index, name, saved[name])
        expected = self.store.count_vectors(INDEXES[name])
        # Another process may have written since ``seq``: compare only a quiet database.
        if len(index) != expected and self.store.current_seq() == seq:
            log.warning("%s disagrees with the database after replay; rebuilding it", path)
            return self.rebuild(name, dim)
        if replayed:
            log.info("%s: replayed %d changes made after its last save", path.name, replayed)
            self.unsaved += replayed  # the saved file is stale: save it again on close
        self.indexes[name] = index
        self._opened(seq)
        return index

    def rebuild(self, name: str, dim: int) -> VectorIndex:
        """A new cache ``name`` holding every vector of its column in SQL (a new replica's
        first open, or a lost cache): read in chunks, then built in its final form at once
        (``VectorIndex.from_parts``)."""
        seq = self.store.current_seq()
        ids: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        for part_ids, part_vectors in self._changes(name, -1, dim):
            ids.append(part_ids)
            vectors.append(part_vectors)
        count = sum(len(part) for part in ids)
        index = VectorIndex.from_parts(
            dim, ids, vectors, exact_max=self.settings.exact_max, nprobe=self.settings.ivf_nprobe
        )
        self.unsaved += max(count, 1)  # never saved in this form: save it on close
        if count:
            log.info("rebuilt the %s index from the database: %d vectors", name, count)
        self.indexes[name] = index
        self._opened(seq)
        return index

    def _opened(self, seq: int) -> None:
        """A cache complete up to ``seq`` joined: the others may lag it, so catch them up."""
        if self.applied is None:
            self.applied = seq
        elif seq > self.applied:
            self.catch_up()

    def _replay(self, index: VectorIndex, name: str, since: int) -> int:
        """Forget the events deleted after sequence ``since``, then upsert every row changed
        after it (in that order: an id deleted and then stored again must stay); returns how
        many upserts had a vector."""
        if since >= 0:
            index.remove(np.array(self.store.deleted_since(since), dtype=np.int64))
        count = 0
        for ids, vectors in self._changes(name, since, index.dim):
            index.upsert(ids, vectors)
            count += len(ids)
        return count

    def _changes(self, name: str, since: int, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) chunks of cache ``name``'s column changed after ``since`` (all: -1),
        about ``REPLAY_CHUNK_BYTES`` of vectors each."""
        rows = max(1, REPLAY_CHUNK_BYTES // (4 * dim))
        return self.store.vectors_since(since, INDEXES[name], dim, chunk_rows=rows)

    # -- following the change sequence -------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every change committed after ``applied`` (by any process); returns how many
        vectors changed."""
        seq = self.store.current_seq()
        if self.applied is None or seq <= self.applied:
            return 0
        since = self.applied
        changed = sum(self._replay(index, name, since) for name, index in self.indexes.items())
        self.applied = seq
        return changed

    def advance(self, seq: int) -> None:
        """This process committed ``seq`` and applied it to the caches. The caches are complete
        up to it only if nothing came between (another process's commit): otherwise
        ``catch_up`` fills the gap later and replays ``seq`` again, harmlessly."""
        if self.applied is not None and seq == self.applied + 1:
            self.applied = seq

    # -- changes -------------------------------------------------------------------------------
    def remove(self, ids: list[int]) -> None:
        """Forget deleted events in every cache."""
        for index in self.indexes.values():
            index.remove(np.array(ids, dtype=np.int64))

    def note_changes(self, count: int) -> bool:
        """Count ``count`` changes; True when a checkpoint is due: after ``checkpoint_every``
        changes, or 5% of the largest cache if that is more. A save rewrites the whole index
        (about 1 GB at 1M x 256-d), and replay on open covers whatever came after it."""
        self.unsaved += count
        size = max((len(index) for index in self.indexes.values()), default=0)
        return self.unsaved >= max(self.settings.checkpoint_every, size // 20)

    def save(self) -> None:
        """Save every cache atomically, then record that they are complete up to ``applied``."""
        self.catch_up()  # a save records one sequence for all: bring them all to it first
        seq = self.applied if self.applied is not None else -1
        state = {}
        for name, index in self.indexes.items():
            index.save(self.path(name))
            state[name] = seq
        write_atomic(self.dir / STATE_FILE, json.dumps(state))
        self.unsaved = 0


def read_state(path: Path) -> dict[str, int]:
    """``index.json``: cache name -> sequence it is complete up to ({} if absent or corrupt)."""
    try:
        data = json.loads(path.read_text())
        return {k: int(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}
