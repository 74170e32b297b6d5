"""Small pieces the engine is built from: metrics counters, shared-model locks, message shapes.

Why locks around the models: live batches, upload jobs, caption prompts and questions all call
the same encoder and text embedder from different threads. Two forward passes at once on a CPU
only fight for the same cores, and a Hugging Face fast tokenizer raises "Already borrowed" when two
threads use it together; one lock per model serialises them at the cost of nothing real.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

from eventvstream.events.types import Event
from eventvstream.memory.bank import Stored
from eventvstream.memory.store import EventRow
from eventvstream.perception.base import ImageEncoder
from eventvstream.perception.text import TextEmbedder

WINDOW = 1024  # recent observations kept per summary (for quantiles)


class Summary:
    """Count, sum and recent values of an observed quantity (Prometheus summary)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.recent: deque[float] = deque(maxlen=WINDOW)

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.recent, q)) if self.recent else 0.0


class EngineMetrics:
    """Thread-safe counters and summaries; rendered by ``/metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, float] = {}
        self.summaries: dict[str, Summary] = {}
        self.load_s = 0.0

    def add(self, name: str, value: float = 1) -> None:
        if value:
            with self._lock:
                self.counters[name] = self.counters.get(name, 0) + value

    def observe(self, name: str, value: float) -> None:
        with self._lock:
            summary = self.summaries.setdefault(name, Summary())
            summary.count += 1
            summary.total += value
            summary.recent.append(value)

    def snapshot(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        with self._lock:
            summaries = {
                name: {
                    "count": s.count,
                    "sum": s.total,
                    "p50": s.quantile(0.5),
                    "p95": s.quantile(0.95),
                    "p99": s.quantile(0.99),
                }
                for name, s in self.summaries.items()
            }
            return dict(self.counters), summaries


class SharedEncoder:
    """An :class:`ImageEncoder` behind one lock (see the module docstring)."""

    def __init__(self, inner: ImageEncoder) -> None:
        self.inner = inner
        self.info = inner.info
        self.lock = threading.Lock()

    def encode_images(self, images: Any) -> np.ndarray:
        with self.lock:
            return self.inner.encode_images(images)

    def top_labels(self, images: Any, k: int) -> list[list[tuple[str, float]]]:
        with self.lock:
            return self.inner.top_labels(images, k)

    def encode_and_label(
        self, images: Any, k: int
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        with self.lock:
            return self.inner.encode_and_label(images, k)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            return self.inner.encode_text(texts)


class SharedEmbedder:
    """A :class:`TextEmbedder` behind one lock."""

    def __init__(self, inner: TextEmbedder) -> None:
        self.inner = inner
        self.info = inner.info
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed(texts)


def boundary_message(
    stream: str, stored: Stored, event: Event, row: EventRow | None
) -> dict[str, Any]:
    """The ``event.boundary`` message. A merged event reports its slot's widened span (the id
    names the slot), and the boundary that closed the new part."""
    start, end = (row.start, row.end) if row is not None else (event.start, event.end)
    return {
        "type": "event.boundary",
        "stream_id": stream,
        "event_id": stored.id,
        "start": round(start, 3),
        "end": round(end, 3),
        "merged": stored.merged,
        "labels": [[name, round(p, 4)] for name, p in event.labels[:5]],
        "boundary": event.closed_by.to_dict(),
    }
