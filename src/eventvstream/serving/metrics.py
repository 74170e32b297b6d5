"""Server metrics: thread-safe counters and summaries the engine keeps (``/metrics`` renders them).

Engine-side because the engine's threads count what they do (frames, batches, captions) and
clients' status messages read the same numbers; ``api/metrics.py`` only formats them.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from eventvstream.language.grounding import INVENTED
from eventvstream.pipeline.ingest import BaseListener, CaptionDone, StoredEvent

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


class MetricsListener(BaseListener):
    """Counts stored events and captions (an ingest listener)."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self.metrics = metrics

    def event_stored(self, event: StoredEvent) -> None:
        self.metrics.add("events")

    def event_merged(self, event: StoredEvent) -> None:
        self.metrics.add("events")

    def caption_done(self, caption: CaptionDone) -> None:
        self.metrics.add("decoder_calls_caption")
        self.metrics.add("caption_fallbacks", int(caption.fallback))
        self.metrics.observe("caption_latency_s", caption.latency_s)

    def caption_failed(self, event: StoredEvent, code: str) -> None:
        self.metrics.add("decoder_calls_caption")
        self.metrics.add("caption_failures")


def count_phrasing(metrics: EngineMetrics, rejected: str | None) -> None:
    """Count a decoder's answer phrasing that failed a grounding check (``rejected``: its
    reason; the templated answer was given), and separately one that named something its
    evidence does not (``grounding.INVENTED``)."""
    if rejected is None:
        return
    metrics.add("phrasing_fallbacks")
    if rejected.startswith(INVENTED):
        metrics.add("phrasing_invented_content")
