"""The lifecycle of the FAISS caches of one data directory: load, replay, rebuild, save.

``visual.faiss`` and ``text.faiss`` are caches of the ``embedding`` and ``text_embedding``
columns of the SQL store, never the truth. ``index.json`` records the change sequence
(``meta.seq``) each saved cache is complete up to. Opening a cache loads the file and replays
every row changed after that sequence; a missing, unreadable or inconsistent cache (its size
disagrees with SQL after replay) is rebuilt from SQL with a log line. A checkpoint saves every
cache atomically, then the sequence: a crash between the two only means more replay next time.

The caller (``MemoryBank``) holds its writer lock around ``save`` and around "commit to SQL,
then update the caches", so a saved cache never lacks a change older than its saved sequence.
"""

from __future__ import annotations

import json
import logging
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


class IndexCaches:
    """The open caches (``indexes``) and how many changes they hold beyond their saved files."""

    def __init__(self, directory: Path, store: EventStore, settings: MemorySettings) -> None:
        self.dir = directory
        self.store = store
        self.settings = settings
        self.indexes: dict[str, VectorIndex] = {}
        self.unsaved = 0  # changes since the last save; nonzero means "save on close"

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.faiss"

    # -- opening -------------------------------------------------------------------------------
    def open(self, name: str, dim: int) -> VectorIndex:
        """Load cache ``name`` and bring it up to date with SQL, or rebuild it."""
        saved = read_state(self.dir / STATE_FILE)
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
        if len(index) != self.store.count_vectors(INDEXES[name]):
            log.warning("%s disagrees with the database after replay; rebuilding it", path)
            return self.rebuild(name, dim)
        if replayed:
            log.info("%s: replayed %d changes made after its last save", path.name, replayed)
            self.unsaved += replayed  # the saved file is stale: save it again on close
        self.indexes[name] = index
        return index

    def rebuild(self, name: str, dim: int) -> VectorIndex:
        """A new cache ``name`` holding every vector of its column in SQL."""
        index = VectorIndex(dim, exact_max=self.settings.exact_max, nprobe=self.settings.ivf_nprobe)
        count = self._replay(index, name, -1)
        self.unsaved += max(count, 1)  # never saved in this form: save it on close
        if count:
            log.info("rebuilt the %s index from the database: %d vectors", name, count)
        self.indexes[name] = index
        return index

    def _replay(self, index: VectorIndex, name: str, since: int) -> int:
        """Upsert every row changed after sequence ``since``; returns how many had a vector."""
        ids, vectors = [], []
        for event_id, data in self.store.changed_since(since, INDEXES[name]):
            if data is not None:
                ids.append(event_id)
                vectors.append(np.frombuffer(data, dtype=np.float32))
        if ids:
            index.upsert(np.array(ids), np.stack(vectors))
        return len(ids)

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

    def save(self, seq: int) -> None:
        """Save every cache atomically, then record that they are complete up to ``seq``."""
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
