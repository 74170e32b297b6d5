"""Nearest events to a vector within a scope: which search runs where.

- Unscoped: the FAISS cache.
- A small scope (a stream's hour, a user's events, up to ``exact_scope_max`` rows): exact search
  over that scope's own vectors, read from SQL; exact recall, and no id selector to build.
- A large scope: FAISS restricted to the scope's ids.

The caller holds the bank's writer lock: FAISS indexes are not safe to read while another
thread writes.
"""

from __future__ import annotations

import numpy as np

from eventvstream.memory.index import VectorIndex
from eventvstream.memory.store import EventStore


def nearest_ids(
    store: EventStore,
    index: VectorIndex,
    column: str,
    query: np.ndarray,
    k: int,
    *,
    stream: str | None,
    owner: str | None,
    t0: float | None,
    t1: float | None,
    exact_scope_max: int,
) -> list[tuple[int, float]]:
    """(event id, score) of the ``k`` best matches of ``query`` against ``column`` vectors."""
    if any(v is not None for v in (stream, owner, t0, t1)):
        in_scope = store.count_in_scope(stream, owner, t0, t1)
        if in_scope == 0:
            return []
        if in_scope <= exact_scope_max:
            ids, blobs = store.vectors_in_scope(column, stream, owner, t0, t1)
            if not blobs:
                return []
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
            scores = matrix @ query
            top = np.argsort(-scores)[:k]
            return [(int(ids[i]), float(scores[i])) for i in top]
        if in_scope < len(index):
            allowed = store.ids_in_scope(stream, owner, t0, t1)
            scores, found = index.search(query[None], k, allowed_ids=allowed)
            return _pairs(found[0], scores[0])
    scores, found = index.search(query[None], k)
    return _pairs(found[0], scores[0])


def _pairs(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]
