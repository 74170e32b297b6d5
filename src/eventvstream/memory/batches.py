"""One batch of new events into the store: the consolidation loop inside one write transaction.

Why here and not in ``bank.py``: this is the part of ``MemoryBank.add_many`` that talks SQL
(the stream's last slot, merge or insert, per event); the bank keeps the caches and locks. The
whole batch is one transaction (``store.transaction(batch=n)``), so it is acknowledged after one
durable commit, and on PostgreSQL its statements travel in a pipeline (two round trips a batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.memory.consolidation import SlotSummary, decide, merged
from eventvstream.memory.rows import EventRow, new_slot
from eventvstream.memory.store import EventStore


@dataclass(frozen=True)
class Stored:
    """What ``add`` acknowledges: the slot id and whether the event merged into it."""

    id: int
    merged: bool
    similarity: float | None
    reason: str


@dataclass
class BatchResult:
    stored: list[Stored]
    touched: dict[int, np.ndarray]  # slot id -> its (new or merged) visual vector
    seq: int  # the committed transaction's sequence number


def store_batch(
    store: EventStore,
    settings: MemorySettings,
    values: list[dict[str, Any]],
    *,
    stream: str,
    owner: str,
    source: str | None,
    first_index: int | None,
) -> BatchResult:
    """Insert (or merge into the stream's last slot) every value dict, in one commit."""
    results: list[Stored] = []
    touched: dict[int, np.ndarray] = {}
    with store.transaction(batch=len(values)) as tx:
        # Read inside the transaction: it holds the sequence row (and, on PostgreSQL, this
        # slot's row lock), so no other writer can append to the stream meanwhile.
        last: EventRow | None = tx.last_of_stream(stream, owner)
        for offset, value in enumerate(values):
            index = None if first_index is None else first_index + offset
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
                threshold=settings.merge_threshold,
                max_gap_s=settings.merge_max_gap_s,
                enabled=settings.consolidate,
            )
            if decision.merge and last is not None and previous is not None:
                _merge(tx, last, previous, new, value, source, index, decision.similarity)
                touched[last.id] = last.embedding
                results.append(Stored(last.id, True, decision.similarity, decision.reason))
                continue
            event_id = tx.insert(
                value | {"stream": stream, "owner": owner, "source": source, "source_index": index}
            )
            touched[event_id] = new.embedding
            # what the stream's last slot now is, for the next event
            last = new_slot(event_id, value, stream, owner, source, new.embedding, tx.seq)
            results.append(Stored(event_id, False, decision.similarity, decision.reason))
    return BatchResult(results, touched, tx.seq)


def _merge(
    tx: Any,
    last: EventRow,
    previous: SlotSummary,
    new: SlotSummary,
    value: dict[str, Any],
    source: str | None,
    index: int | None,
    similarity: float | None,
) -> None:
    """Widen ``last`` with ``new`` in SQL (recording the merge) and in memory, for the next
    event of the batch."""
    slot = merged(previous, new)
    boundaries = {**last.boundaries, "closed_by": value["boundaries"].get("closed_by")}
    tx.merge_into(
        last,
        start=slot.start,
        end=slot.end,
        frames=slot.frames,
        embedding=slot.embedding,
        keyframes=last.keyframes + value["keyframes"],
        boundaries=boundaries,
        record={k: value[k] for k in ("start", "end", "frames", "boundaries")}
        | {"source": source, "source_index": index},
        similarity=similarity,
    )
    last.start, last.end, last.frames = slot.start, slot.end, slot.frames
    last.embedding = slot.embedding
    last.keyframes = last.keyframes + value["keyframes"]
    last.boundaries = boundaries
