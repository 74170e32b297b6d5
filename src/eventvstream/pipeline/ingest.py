"""The one ingest step every path shares: store the event, describe it, caption it, tell listeners.

``evs run``, live sessions, uploads and the language benchmark all hand each closed event to
:meth:`Ingest.store`, which

1. **stores** it in the memory bank (durable when ``add`` returns: a ``kill -9`` after this loses
   nothing a listener was told about);
2. **describes** it: a new slot gets its label text ("a video event showing …") and that text's
   embedding, so it is searchable at once; a slot the event *merged* into keeps its text until
   its new caption is written;
3. **tells listeners** (``event_stored`` or ``event_merged``) with a typed :class:`StoredEvent`;
4. **submits its caption** to the one :class:`CaptionWorker` (never blocks; a full queue skips
   the oldest waiting event), whose results reach listeners as ``caption_delta`` /
   ``caption_done`` / ``caption_failed``.

Listeners are how anything reacts to ingest without ingest knowing about it: the WebSocket
notifier of ``evs serve``, the ``--json`` printer of ``evs run``, metrics, and alert/webhook
deliveries. Register one with :meth:`Ingest.add_listener` (``Engine.add_listener`` on the
server). A listener runs in the thread that stored the event (or in the caption thread for
caption calls), so it must return quickly: hand slow work (an HTTP POST) to a queue of its own.
An exception in a listener is logged and swallowed; it never stops ingest or other listeners.
Subclass :class:`BaseListener` to implement only the calls you need.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from eventvstream.config import LanguageSettings
from eventvstream.events.types import Event
from eventvstream.language.base import Decoder
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.retrieval import describe_labels
from eventvstream.memory.rows import event_values
from eventvstream.perception.text import TextEmbedder
from eventvstream.pipeline.captioner import CaptionJob, CaptionResult, CaptionWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredEvent:
    """An event as memory acknowledged it (what every listener receives)."""

    id: int  # the memory slot id (a merged event names the slot it merged into)
    stream: str
    owner: str
    source: str | None
    start: float  # the slot's span: widened by a merge
    end: float
    merged: bool
    labels: list[tuple[str, float]]  # top keyframe labels of the event just closed
    text: str  # its perception text ("a video event showing …"), the description before a caption
    boundary: dict[str, Any]  # the boundary that closed it, with its cue scores
    event: Event = field(repr=False, compare=False)  # the event as detected (its own span)
    origin: str | None = None  # the live session that produced it, if any
    wall_start: float | None = None  # Unix time the slot began (live streams), else None


@dataclass(frozen=True)
class CaptionDone:
    """A caption written to memory for ``event``."""

    event: StoredEvent
    caption: str
    fallback: bool  # the decoder gave nothing usable: the caption is made of labels
    latency_s: float  # boundary known -> caption stored
    decode_s: float


@runtime_checkable
class IngestListener(Protocol):
    """What ingest tells. Every method must return quickly and may be called from any thread."""

    def event_stored(self, event: StoredEvent) -> None: ...

    def event_merged(self, event: StoredEvent) -> None: ...

    def caption_delta(self, event: StoredEvent, delta: str) -> None: ...

    def caption_done(self, caption: CaptionDone) -> None: ...

    def caption_failed(self, event: StoredEvent, code: str) -> None: ...


class BaseListener:
    """An :class:`IngestListener` that ignores everything: subclass and override what you need."""

    def event_stored(self, event: StoredEvent) -> None:
        pass

    def event_merged(self, event: StoredEvent) -> None:
        pass

    def caption_delta(self, event: StoredEvent, delta: str) -> None:
        pass

    def caption_done(self, caption: CaptionDone) -> None:
        pass

    def caption_failed(self, event: StoredEvent, code: str) -> None:
        pass


class Ingest:
    """Owns the caption worker (when there is a decoder) and the listeners."""

    def __init__(
        self,
        bank: MemoryBank,
        embedder: TextEmbedder,
        decoder: Decoder | None,
        language: LanguageSettings,
        listeners: tuple[IngestListener, ...] = (),
    ) -> None:
        self.bank = bank
        self.embedder = embedder
        self._listeners: list[IngestListener] = list(listeners)
        self._lock = threading.Lock()
        self.captioner: CaptionWorker | None = None
        if decoder is not None:
            self.captioner = CaptionWorker(
                bank,
                decoder,
                embedder,
                language,
                on_delta=self._on_delta,
                on_caption=self._on_caption,
                on_error=self._on_error,
            )

    # -- listeners ------------------------------------------------------------------------------
    def add_listener(self, listener: IngestListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: IngestListener) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _tell(self, call: Callable[[IngestListener], None]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                call(listener)
            except Exception:
                log.exception("ingest listener %r failed", listener)

    # -- the step -------------------------------------------------------------------------------
    def store(
        self,
        event: Event,
        *,
        stream: str,
        owner: str = "",
        source: str | None = None,
        source_index: int | None = None,
        caption: bool = True,
        origin: str | None = None,
        wall_start: float | None = None,
    ) -> StoredEvent:
        """Store ``event`` durably, describe it, tell listeners, submit its caption (unless
        ``caption`` is false or there is no decoder). Any thread but an event loop.
        ``wall_start``: the Unix time the event began, for a live stream (None for a file)."""
        values = event_values(event)
        if wall_start is not None:
            values["wall_start"] = wall_start
        stored = self.bank.add(
            values, stream=stream, owner=owner, source=source, source_index=source_index
        )
        text = describe_labels(values["labels"])
        start, end = event.start, event.end
        if stored.merged:  # the slot keeps its text until its new caption; report its span
            row = self.bank.get(stored.id)
            if row is not None:
                start, end, wall_start = row.start, row.end, row.wall_start
        else:
            self.bank.set_text(stored.id, text, self.embedder.embed([text])[0])
        record = StoredEvent(
            id=stored.id,
            stream=stream,
            owner=owner,
            source=source,
            start=start,
            end=end,
            merged=stored.merged,
            labels=[(str(n), float(p)) for n, p in event.labels[:5]],
            text=text,
            boundary=event.closed_by.to_dict(),
            event=event,
            origin=origin,
            wall_start=wall_start,
        )
        if stored.merged:
            self._tell(lambda listener: listener.event_merged(record))
        else:
            self._tell(lambda listener: listener.event_stored(record))
        if caption and self.captioner is not None:
            images: list[np.ndarray] = [k.image for k in event.keyframes if k.image is not None]
            # RuntimeError: the worker closed (shutdown); the event keeps its label text.
            with contextlib.suppress(RuntimeError):
                self.captioner.submit(CaptionJob(stored.id, images, record=record))
        return record

    # -- captions (caption worker thread) -------------------------------------------------------
    @property
    def pending(self) -> int:
        """Captions waiting or being written."""
        return self.captioner.pending if self.captioner is not None else 0

    def close(self, *, drain: bool = True, timeout: float | None = None) -> None:
        if self.captioner is not None:
            self.captioner.close(drain=drain, timeout=timeout)

    def _on_delta(self, job: CaptionJob, delta: str) -> None:
        record = job.record
        if record is not None:
            self._tell(lambda listener: listener.caption_delta(record, delta))

    def _on_caption(self, result: CaptionResult) -> None:
        record = result.job.record
        if record is None:
            return
        done = CaptionDone(
            record, result.caption, result.fallback, result.latency_s, result.decode_s
        )
        self._tell(lambda listener: listener.caption_done(done))

    def _on_error(self, job: CaptionJob, exc: Exception) -> None:
        record = job.record
        if record is not None:
            code = getattr(exc, "code", None) or "caption_failed"
            self._tell(lambda listener: listener.caption_failed(record, str(code)))
