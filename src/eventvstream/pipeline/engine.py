"""The server's engine: the models, loaded once, and the threads that keep them busy.

Why one engine per process: the encoder, the text embedder and the decoder are big and slow to
load, and the memory bank allows one writer per directory; every session, upload and question
shares them. Why threads and not the event loop: no model call may ever block the asyncio loop
that serves every client, so work runs in a few dedicated threads and results come back to the
loop with ``call_soon_threadsafe`` (see :meth:`LiveSession.emit`):

* **live ingest** (:mod:`eventvstream.pipeline.live`) — one encoder thread batching frames across
  all sessions, one writer thread storing their events;
* **captions** — the one :class:`CaptionWorker`, shared; its callbacks are routed back to the
  session that produced the event (``CaptionJob.context``);
* **uploads** — video files, one job at a time (:mod:`eventvstream.pipeline.jobs`);
* **questions** — retrieval in a worker thread, decoding through the decoder's own thread.

Models load in a background thread at start, so the process answers ``/healthz`` at once and
``/readyz`` turns 200 when they are warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.events.types import Event
from eventvstream.pipeline.engine_support import (
    EngineMetrics,
    SharedEmbedder,
    SharedEncoder,
    boundary_message,
)
from eventvstream.pipeline.jobs import UploadJob, UploadJobs, run_upload
from eventvstream.pipeline.session import LiveSession

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = EngineMetrics()
        self.ready = False
        self.draining = False
        self.error: str | None = None  # a fatal load error: /readyz stays 503 with it
        self._loaded = threading.Event()
        self._closed = False
        self.bank: Any = None
        self.live: Any = None
        self.captioner: Any = None
        self.decoder: Any = None
        self.jobs: UploadJobs | None = None
        self.alerts: Any = None  # serving.alerts.engine.AlertEngine when alerts.enabled

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the models in the background; :attr:`ready` turns true when they are warm."""
        threading.Thread(target=self._load, name="evs-load", daemon=True).start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        self._loaded.wait(timeout)
        return self.ready

    def _load(self) -> None:
        try:
            self._load_models()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            log.exception("engine failed to start")
        else:
            self.ready = not self._closed
            log.info("engine ready in %.1f s", self.metrics.load_s)
        finally:
            self._loaded.set()

    def _load_models(self) -> None:
        from eventvstream.language import load_decoder
        from eventvstream.language.qa import Answerer
        from eventvstream.memory import MemoryBank
        from eventvstream.memory.retrieval import Retriever
        from eventvstream.perception import load_text_embedder
        from eventvstream.pipeline.captioner import CaptionWorker
        from eventvstream.pipeline.live import LiveIngest
        from eventvstream.pipeline.segmenter import Segmenter
        from eventvstream.pipeline.streams import StreamRegistry

        started = time.perf_counter()
        settings = self.settings
        # The segmenter loads the encoder with the same CPU split as `evs run` (uploads decode
        # video in a subprocess while the encoder runs).
        self.encoder = SharedEncoder(Segmenter(settings).encoder)
        self.embedder = SharedEmbedder(
            load_text_embedder(settings.memory.text_embedder, settings.device)
        )
        self.decoder = load_decoder(settings)
        self.bank = MemoryBank(settings.memory, visual_dim=self.encoder.info.dim)
        self.streams = StreamRegistry(self.bank)
        if settings.alerts.enabled:
            self._start_alerts()
        if self.decoder is not None:
            self.captioner = CaptionWorker(
                self.bank,
                self.decoder,
                self.embedder,
                settings.language,
                on_delta=self._on_caption_delta,
                on_caption=self._on_caption,
                on_error=self._on_caption_error,
            )
        self.retriever = Retriever(self.bank, self.embedder, self.encoder)
        self.answerer = Answerer(self.bank, self.retriever, self.decoder, settings.language)
        self.jobs = UploadJobs(lambda job, cancel: run_upload(self, job, cancel))
        self.live = LiveIngest(
            settings, self.metrics, self.encoder, self.bank, self.streams, self._store_live
        )
        self.metrics.load_s = time.perf_counter() - started

    def _start_alerts(self) -> None:
        """Watches and deliveries (:mod:`eventvstream.serving.alerts`); an ``alert`` also goes
        to the live session of its stream, as a WebSocket message."""
        from eventvstream.serving.alerts.engine import AlertEngine

        self.alerts = AlertEngine(
            self.settings.alerts, self.bank, self.embedder, self.decoder, metrics=self.metrics
        )

        def to_session(owner: str, stream: str, message: dict[str, Any]) -> None:
            session = self.live.session(owner, stream) if self.live is not None else None
            if session is not None:
                session.emit(message)

        self.alerts.hub.sinks.append(to_session)

    def check_accepting(self) -> None:
        """Raise unless new work may start (models warm, not shutting down)."""
        if self.draining:
            raise EvsError("the server is shutting down", code="draining")
        if not self.ready:
            raise EvsError(self.error or "the models are still loading", code="not_ready")

    def begin_drain(self) -> None:
        """Readiness goes 503 and no new session, upload or question is accepted; every live
        session is asked to flush (its queued frames are processed, its open event stored)."""
        self.draining = True
        if self.live is not None:
            self.live.close_all()

    def wait_idle(self, deadline: float) -> bool:
        """Block until sessions are flushed, events stored and captions written, or until
        ``deadline`` (time.monotonic()). True when everything finished in time."""
        while time.monotonic() < deadline:
            live_idle = self.live is None or self.live.idle()
            captions = self.captioner.pending if self.captioner is not None else 0
            if live_idle and captions == 0:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop the threads and close the memory bank (a checkpoint of its indexes). Idempotent."""
        if self._closed:
            return
        self._closed, self.ready = True, False
        if self.jobs is not None:
            self.jobs.close()
        if self.live is not None:
            self.live.stop()
        if self.captioner is not None:
            self.captioner.close(drain=False, timeout=10)
        if self.alerts is not None:
            self.alerts.close()
        if self.bank is not None:
            self.bank.close()
        if self.decoder is not None:
            self.decoder.close()

    # -- storing events (writer thread, upload thread) ----------------------------------------
    def _store_live(self, event: Event, session: LiveSession) -> None:
        self.store_event(event, session.stream, session.owner, session.source, session=session)

    def store_event(
        self,
        event: Event,
        stream: str,
        owner: str,
        source: str,
        *,
        session: LiveSession | None = None,
        source_index: int | None = None,
    ) -> int:
        """Memory bank (durable), label text, boundary message, caption job — the same steps as
        ``evs run``. Any thread but the event loop."""
        from eventvstream.memory.bank import event_values
        from eventvstream.memory.retrieval import describe_labels
        from eventvstream.pipeline.captioner import CaptionJob

        values = event_values(event)
        stored = self.bank.add(
            values, stream=stream, owner=owner, source=source, source_index=source_index
        )
        if not stored.merged:  # a merged slot keeps its text until its new caption
            text = describe_labels(values["labels"])
            self.bank.set_text(stored.id, text, self.embedder.embed([text])[0])
        if self.alerts is not None:  # before the pixels go: the alert keyframe, brightness
            self.alerts.event_stored(event, stored, stream, owner)
        images = [k.image for k in event.keyframes if k.image is not None]
        for keyframe in event.keyframes:
            keyframe.image = None
        self.metrics.add("events")
        generate = session.config.generate if session is not None else True
        if session is not None:
            session.events += 1
            row = self.bank.get(stored.id) if stored.merged else None
            session.emit(boundary_message(stream, stored, event, row))
        if generate and self.captioner is not None:
            # RuntimeError: the worker closed (shutdown); the event keeps its label text.
            with contextlib.suppress(RuntimeError):
                self.captioner.submit(CaptionJob(stored.id, images, context=session))
        return stored.id

    # -- captions (caption worker thread) -----------------------------------------------------
    def _on_caption_delta(self, job: Any, delta: str) -> None:
        if isinstance(job.context, LiveSession):
            job.context.emit(
                {"type": "event.caption.delta", "event_id": job.event_id, "delta": delta}
            )

    def _on_caption(self, result: Any) -> None:
        self.metrics.add("decoder_calls_caption")
        self.metrics.observe("caption_latency_s", result.latency_s)
        if self.alerts is not None:
            self.alerts.caption_done(result)
        if isinstance(result.job.context, LiveSession):
            result.job.context.emit(
                {
                    "type": "event.caption.done",
                    "event_id": result.job.event_id,
                    "caption": result.caption,
                    "latency_s": round(result.latency_s, 4),
                }
            )

    def _on_caption_error(self, job: Any, exc: Exception) -> None:
        self.metrics.add("decoder_calls_caption")
        self.metrics.add("caption_failures")
        if isinstance(job.context, LiveSession):
            code = getattr(exc, "code", "caption_failed")
            job.context.emit({"type": "error", "code": code, "message": str(exc)})

    # -- questions, lookups, uploads ----------------------------------------------------------
    async def answer(self, question: str, scope: Any) -> AsyncIterator[tuple[str, Any]]:
        """("delta", text)… then ("done", answer dict). Retrieval runs in a worker thread and
        the decoder streams through its own thread, so the loop never blocks."""
        self.check_accepting()
        try:
            plan = await asyncio.to_thread(self.answerer.plan, question, scope)
        except ValueError as exc:
            raise EvsError(str(exc), code="bad_request") from None
        self.metrics.add("queries")
        if plan.request is not None:
            self.metrics.add("decoder_calls_answer")
        parts: list[str] = []
        async for delta in self.answerer.astream(plan):
            parts.append(delta)
            yield "delta", delta
        yield "done", self.answerer.finish(plan, "".join(parts)).to_dict()

    def find_events(
        self,
        owner: str,
        stream: str,
        *,
        t0: float | None = None,
        t1: float | None = None,
        q: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events of a stream by time, or by text (hybrid search). Blocking."""
        from eventvstream.memory.retrieval import Scope

        if q:
            hits = self.retriever.search(q, k=limit, scope=Scope(stream, owner, t0, t1))
            return [hit.event.to_dict() | {"score": round(hit.score, 4)} for hit in hits]
        rows = self.bank.events(stream=stream, owner=owner, t0=t0, t1=t1, limit=limit)
        return [row.to_dict() for row in rows]

    def submit_upload(self, job: UploadJob) -> UploadJob:
        self.check_accepting()
        assert self.jobs is not None
        self.streams.ensure(job.owner, job.stream)
        self.metrics.add("uploads")
        return self.jobs.submit(job)

    # -- reporting ----------------------------------------------------------------------------
    def status(self, session: LiveSession) -> dict[str, Any]:
        pending = self.captioner.pending if self.captioner is not None else 0
        return session.status(time.monotonic(), pending)

    @property
    def session_count(self) -> int:
        return self.live.session_count if self.live is not None else 0

    def queue_depths(self) -> dict[str, int]:
        depths = self.live.queue_depths() if self.live is not None else {}
        depths["captions"] = self.captioner.pending if self.captioner is not None else 0
        depths["uploads"] = self.jobs.active if self.jobs is not None else 0
        if self.alerts is not None:
            for channel, pending in self.alerts.pending().items():
                depths[f"alerts_{channel}"] = pending
        return depths

    def lag(self) -> tuple[float, float]:
        return self.live.lag() if self.live is not None else (0.0, 0.0)
