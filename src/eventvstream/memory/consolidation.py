"""Merge-or-append: how memory stays bounded over hours of repetitive video (pure).

A new event is merged into the *last* event of the same stream when their embeddings are close
(cos > γ) and they are close in time; the merged slot keeps a frame-weighted average embedding
and the union of the time spans. Otherwise the new event gets a slot of its own. The decision is
a pure function so it is tested on constructed sequences; the bank records every merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlotSummary:
    """What consolidation needs to know about an event slot."""

    start: float
    end: float
    frames: int
    embedding: np.ndarray


@dataclass(frozen=True)
class MergeDecision:
    merge: bool
    similarity: float | None
    reason: str


def decide(
    last: SlotSummary | None,
    new: SlotSummary,
    *,
    threshold: float,
    max_gap_s: float,
    enabled: bool = True,
) -> MergeDecision:
    """Merge ``new`` into ``last``? Explains itself with the similarity and a reason."""
    if not enabled:
        return MergeDecision(False, None, "consolidation disabled")
    if last is None:
        return MergeDecision(False, None, "first event of the stream")
    similarity = float(np.dot(last.embedding, new.embedding))
    gap = new.start - last.end
    if gap > max_gap_s:
        return MergeDecision(False, similarity, f"gap {gap:.1f}s > {max_gap_s:.1f}s")
    if gap < -1e-6:
        return MergeDecision(False, similarity, "overlaps the last event (out of order)")
    if similarity > threshold:
        return MergeDecision(True, similarity, f"cos {similarity:.3f} > {threshold:.3f}")
    return MergeDecision(False, similarity, f"cos {similarity:.3f} <= {threshold:.3f}")


def merged(last: SlotSummary, new: SlotSummary) -> SlotSummary:
    """The slot after merging: union of spans, frame-weighted mean embedding (unit norm)."""
    weight_last, weight_new = max(last.frames, 1), max(new.frames, 1)
    embedding = weight_last * last.embedding + weight_new * new.embedding
    norm = float(np.linalg.norm(embedding))
    if norm > 0:
        embedding = embedding / norm
    return SlotSummary(
        start=min(last.start, new.start),
        end=max(last.end, new.end),
        frames=last.frames + new.frames,
        embedding=embedding.astype(np.float32),
    )
