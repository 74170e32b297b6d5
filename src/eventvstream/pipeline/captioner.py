"""Boundary-triggered generation, off the ingest path.

Ingest hands each stored event to :meth:`CaptionWorker.submit`, which never blocks: the event
waits in a bounded queue and a dedicated thread runs the decoder. When the queue is full the
oldest waiting event is skipped (counted, and the event keeps its label text), so a slow decoder
makes captions sparser, never ingest slower. For each event the worker retrieves the top-K
related *earlier* events of the same stream from memory, builds the prompt, decodes with a
bounded token budget, and writes the caption and its sentence embedding back to the event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from eventvstream.config import LanguageSettings
from eventvstream.errors import EvsError
from eventvstream.language import caption_check, prompts
from eventvstream.language.base import Decoder
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.rows import EventRow
from eventvstream.perception.text import TextEmbedder

if TYPE_CHECKING:
    from eventvstream.pipeline.ingest import StoredEvent

log = logging.getLogger(__name__)


@dataclass
class CaptionJob:
    event_id: int
    images: list[np.ndarray] = field(default_factory=list, repr=False)
    closed_at: float = field(default_factory=time.perf_counter)  # when the boundary was known
    record: StoredEvent | None = None  # what ingest stored: handed back to its listeners


@dataclass
class CaptionResult:
    job: CaptionJob
    caption: str
    raw: str
    fallback: bool  # the decoder gave nothing usable: the caption is the templated description
    latency_s: float  # boundary known -> caption stored
    decode_s: float
    first_token_s: float | None
    related: list[int]


@dataclass
class CaptionStats:
    submitted: int = 0
    captioned: int = 0
    skipped: int = 0  # dropped from a full queue
    failed: int = 0
    fallbacks: int = 0  # captions replaced by the templated description
    retries: int = 0  # captions decoded a second time after failing the checks
    rejected: dict[str, int] = field(default_factory=dict)  # failed checks, by reason
    decode_s: float = 0.0
    latencies: list[float] = field(default_factory=list)


def related_events(bank: MemoryBank, row: EventRow, k: int) -> list[EventRow]:
    """The ``k`` earlier events of the same stream that look most like ``row``."""
    if k <= 0:
        return []
    hits = bank.search(
        row.embedding, index="visual", k=k + 4, stream=row.stream, owner=row.owner, t1=row.start
    )
    earlier = [h.event for h in hits if h.event.id != row.id and h.event.end <= row.start + 1e-6]
    return earlier[:k]


class CaptionWorker:
    def __init__(
        self,
        bank: MemoryBank,
        decoder: Decoder,
        embedder: TextEmbedder,
        settings: LanguageSettings,
        *,
        on_delta: Callable[[CaptionJob, str], None] | None = None,
        on_caption: Callable[[CaptionResult], None] | None = None,
        on_error: Callable[[CaptionJob, Exception], None] | None = None,
    ) -> None:
        self.bank = bank
        self.decoder = decoder
        self.embedder = embedder
        self.settings = settings
        self.on_delta = on_delta
        self.on_caption = on_caption
        self.on_error = on_error
        self.stats = CaptionStats()
        self._queue: deque[CaptionJob] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="evs-captions", daemon=True)
        self._thread.start()

    # -- producer side (ingest) ----------------------------------------------------------------
    def submit(self, job: CaptionJob) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("caption worker is closed")
            self.stats.submitted += 1
            while len(self._queue) >= self.settings.queue_size:
                dropped = self._queue.popleft()
                self.stats.skipped += 1
                log.info("caption queue full: skipped event %d", dropped.event_id)
            self._queue.append(job)
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + int(self._busy)

    def close(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop accepting jobs; with ``drain`` finish the queued ones first, else drop them."""
        with self._cond:
            self._closing = True
            if not drain:
                self.stats.skipped += len(self._queue)
                self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- consumer side -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
                self._busy = True
            try:
                result = self.caption(job)
            except Exception as exc:  # one bad event must not stop the worker
                self.stats.failed += 1
                log.warning("captioning event %d failed: %s", job.event_id, exc)
                if self.on_error is not None:
                    self._callback(self.on_error, job, exc)
            else:
                if result is not None and self.on_caption is not None:
                    self._callback(self.on_caption, result)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    @staticmethod
    def _callback(callback: Callable[..., None], *args: object) -> None:
        """A failing callback (a closed stdout, a gone client) is logged, never fatal: an
        exception escaping here would end the worker thread and leave the queue undrained."""
        try:
            callback(*args)
        except Exception:
            log.exception("caption worker callback %r failed", callback)

    def caption(self, job: CaptionJob) -> CaptionResult | None:
        """Caption one stored event now (in the calling thread) and store the caption."""
        row = self.bank.get(job.event_id)
        if row is None:  # deleted (its stream was removed) while it waited
            return None
        related = related_events(self.bank, row, self.settings.related_events)
        images = job.images if self.decoder.info.accepts_images else []
        request = prompts.caption_request(
            row,
            related,
            max_new_tokens=self.settings.caption_max_tokens,
            temperature=self.settings.temperature,
            images=images,
        )
        started = time.perf_counter()
        first: float | None = None
        raw = caption = ""
        for attempt in range(2):  # a failed caption is retried once, sampling
            if attempt:
                self.stats.retries += 1
                request.temperature = max(request.temperature, 0.7)
            parts: list[str] = []
            for delta in self.decoder.stream(request):
                if first is None:
                    first = time.perf_counter() - started
                parts.append(delta)
                if self.on_delta is not None and attempt == 0:
                    self.on_delta(job, delta)
            raw = "".join(parts)
            caption = prompts.clean_caption(raw)
            reason = caption_check.problem(
                caption,
                row,
                prompts.EXAMPLE_CAPTIONS,
                # a decoder that saw the keyframes may name more than the labels
                check_content=self.settings.check_content and not images,
            )
            if reason is None:
                break
            self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
            log.info("caption of event %d rejected (%s): %r", row.id, reason, caption)
            caption = ""
        decode_s = time.perf_counter() - started
        fallback = not caption
        if fallback:
            caption = prompts.fallback_caption(row)
        text = prompts.description(caption, row)
        try:
            self.bank.set_text(row.id, text, self.embedder.embed([text])[0], caption=caption)
        except EvsError as exc:
            if exc.code != "not_found":
                raise
            return None
        latency = time.perf_counter() - job.closed_at
        self.stats.captioned += 1
        self.stats.fallbacks += int(fallback)
        self.stats.decode_s += decode_s
        self.stats.latencies.append(latency)
        return CaptionResult(
            job, caption, raw, fallback, latency, decode_s, first, [r.id for r in related]
        )
