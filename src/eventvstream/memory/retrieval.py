"""Questions in words -> events, over every index that can answer them.

- the **text** index holds sentence embeddings of each event's description (its caption once the
  language layer writes one; until then the perception text built from its keyframe labels) and
  is searched with the question embedded by the same sentence embedder;
- the **visual** index is searched with the question embedded by the image encoder's text tower,
  when it has one (open_clip; the packaged EfficientNet has none);
- a time range alone lists the events in it.

Results from several indexes are fused by reciprocal rank (robust to their different score
scales) and each hit says which index found it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventvstream.memory.bank import Hit, MemoryBank
from eventvstream.perception.base import ImageEncoder
from eventvstream.perception.text import TextEmbedder
from eventvstream.perception.vocabulary import roll_up

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very top ranks


@dataclass(frozen=True)
class Scope:
    stream: str | None = None
    owner: str | None = None
    t0: float | None = None
    t1: float | None = None


def describe_labels(labels: Sequence[Sequence[Any]]) -> str:
    """The indexed text of an event before it has a caption: its pooled labels and the everyday
    words above them (so "a bird" finds a cockatoo before any caption exists)."""
    words = [word for word, p in roll_up(labels) if p >= 0.1][:12]
    return "a video event showing " + ", ".join(words) if words else "a video event"


class Retriever:
    def __init__(
        self,
        bank: MemoryBank,
        text_embedder: TextEmbedder,
        image_encoder: ImageEncoder | None = None,
    ) -> None:
        self.bank = bank
        self.text_embedder = text_embedder
        self.image_encoder = (
            image_encoder if image_encoder and image_encoder.info.has_text else None
        )

    def search(self, question: str | None, *, k: int = 10, scope: Scope = Scope()) -> list[Hit]:
        """Hybrid search; with no question, the events in the scope's time range."""
        where = {"stream": scope.stream, "owner": scope.owner, "t0": scope.t0, "t1": scope.t1}
        if not question:
            rows = self.bank.events(**where, limit=k)
            return [Hit(row, 1.0, "time") for row in rows]
        ranked: list[list[Hit]] = []
        text_vector = self.text_embedder.embed([question])[0]
        ranked.append(self.bank.search(text_vector, index="text", k=k, **where))
        if self.image_encoder is not None:
            visual_vector = self.image_encoder.encode_text([question])[0]
            ranked.append(self.bank.search(visual_vector, index="visual", k=k, **where))
        return fuse_rankings(ranked, k)

    def similar_to(self, event_id: int, *, k: int = 10, scope: Scope = Scope()) -> list[Hit]:
        """Events that look like ``event_id`` (visual index), excluding itself."""
        row = self.bank.get(event_id)
        if row is None:
            return []
        where = {"stream": scope.stream, "owner": scope.owner, "t0": scope.t0, "t1": scope.t1}
        hits = self.bank.search(row.embedding, index="visual", k=k + 1, **where)
        return [h for h in hits if h.event.id != event_id][:k]


def fuse_rankings(rankings: list[list[Hit]], k: int) -> list[Hit]:
    """Reciprocal rank fusion; a single ranking passes through with its own scores."""
    non_empty = [r for r in rankings if r]
    if len(non_empty) <= 1:
        return (non_empty[0] if non_empty else [])[:k]
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    sources: dict[int, list[str]] = {}
    for ranking in non_empty:
        for rank, hit in enumerate(ranking):
            scores[hit.event.id] = scores.get(hit.event.id, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(hit.event.id, hit)
            sources.setdefault(hit.event.id, []).append(hit.source)
    order = sorted(scores, key=lambda i: -scores[i])[:k]
    return [Hit(first[i].event, float(np.round(scores[i], 6)), "+".join(sources[i])) for i in order]
