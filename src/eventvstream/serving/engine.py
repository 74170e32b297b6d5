"""The server's engine: the models, loaded once, and the threads that keep them busy.

Why one engine per process: the encoder, the text embedder and the decoder are big and slow to
load, and the memory bank allows one writer per directory; every session, upload and question
shares them. Why threads and not the event loop: no model call may ever block the asyncio loop
that serves every client, so work runs in a few dedicated threads and results come back to the
loop with ``call_soon_threadsafe`` (see :meth:`LiveSession.emit`):

* **live ingest** (:mod:`eventvstream.serving.live`) — one encoder thread batching frames across
  all sessions, one writer thread storing their events;
* **the ingest step** (:mod:`eventvstream.pipeline.ingest`) — store, describe, tell listeners,
  caption (the one caption worker thread); the WebSocket notifier and the metrics are listeners;
* **uploads** — video files, one job at a time (:mod:`eventvstream.serving.jobs`);
* **questions** — retrieval in a worker thread, decoding through the decoder's own thread.

Models load in a background thread at start, so the process answers ``/healthz`` at once and
``/readyz`` turns 200 when they are warm. The API uses only the methods of
:class:`~eventvstream.serving.facade.EngineFacade`, which this class implements.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np

from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.language.qa import Answer
from eventvstream.memory.retrieval import Scope
from eventvstream.memory.rows import EventRow
from eventvstream.pipeline.ingest import IngestListener
from eventvstream.pipeline.segmenter import pool_labels
from eventvstream.serving.jobs import UploadJob
from eventvstream.serving.metrics import EngineMetrics, MetricsListener
from eventvstream.serving.notices import SessionStatus
from eventvstream.serving.pull import PullSessions, PullSpec
from eventvstream.serving.session import LiveSession, SessionConfig

if TYPE_CHECKING:
    from eventvstream.language.base import Decoder
    from eventvstream.language.qa import Answerer
    from eventvstream.memory.bank import MemoryBank
    from eventvstream.memory.retrieval import Retriever
    from eventvstream.pipeline.ingest import Ingest
    from eventvstream.serving.alerts.engine import AlertEngine
    from eventvstream.serving.jobs import UploadJobs
    from eventvstream.serving.live import LiveIngest
    from eventvstream.serving.shared import SharedEmbedder, SharedEncoder
    from eventvstream.serving.streams import StreamRegistry

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
        # Listeners registered before the models load are attached when the ingest step exists.
        self._listeners: list[IngestListener] = [MetricsListener(self.metrics)]
        self._listeners_lock = threading.Lock()
        self.encoder: SharedEncoder | None = None
        self.embedder: SharedEmbedder | None = None
        self.decoder: Decoder | None = None
        self.bank: MemoryBank | None = None
        self.ingest: Ingest | None = None
        self.streams: StreamRegistry | None = None
        self.live: LiveIngest | None = None
        self.pulls: PullSessions | None = None
        self.jobs: UploadJobs | None = None
        self.retriever: Retriever | None = None
        self.answerer: Answerer | None = None
        self.alerts: AlertEngine | None = None  # watches and deliveries, when alerts.enabled

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
            # Our own errors carry a message written for people (e.g. the bank is locked);
            # anything else stays in the log.
            if isinstance(exc, EvsError):
                self.error = f"{type(exc).__name__}: {exc.message} [{exc.code}]"
            else:
                self.error = "the models failed to load; see the server log"
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
        from eventvstream.pipeline.ingest import Ingest
        from eventvstream.pipeline.segmenter import Segmenter
        from eventvstream.serving.jobs import UploadJobs, UploadRunner
        from eventvstream.serving.live import LiveIngest
        from eventvstream.serving.notifier import SessionNotifier
        from eventvstream.serving.shared import SharedEmbedder, SharedEncoder
        from eventvstream.serving.streams import StreamRegistry

        started = time.perf_counter()
        settings = self.settings
        # The segmenter loads the encoder with the same CPU split as `evs run` (uploads decode
        # video in a subprocess while the encoder runs).
        self.encoder = encoder = SharedEncoder(Segmenter(settings).encoder)
        self.embedder = embedder = SharedEmbedder(
            load_text_embedder(settings.memory.text_embedder, settings.device)
        )
        self.decoder = load_decoder(settings)
        self.bank = bank = MemoryBank(settings.memory, visual_dim=encoder.info.dim)
        self.streams = streams = StreamRegistry(bank)
        ingest = Ingest(bank, embedder, self.decoder, settings.language)
        self.retriever = Retriever(bank, embedder, encoder)
        self.answerer = Answerer(
            bank, self.retriever, self.decoder, settings.language, open_events=self.open_events
        )
        self.jobs = UploadJobs(UploadRunner(settings, encoder, bank, ingest))
        self.live = live = LiveIngest(settings, self.metrics, encoder, bank, streams, ingest)
        self.pulls = PullSessions(settings, live)
        ingest.add_listener(SessionNotifier(live.by_id))
        if settings.alerts.enabled:
            self.alerts = self._start_alerts(bank, embedder)
            ingest.add_listener(self.alerts)
        with self._listeners_lock:
            for listener in self._listeners:
                ingest.add_listener(listener)
            self.ingest = ingest
        self.metrics.load_s = time.perf_counter() - started

    def _start_alerts(self, bank: MemoryBank, embedder: SharedEmbedder) -> AlertEngine:
        """Watches and deliveries (:mod:`eventvstream.serving.alerts`); an alert also goes to
        the live session of its stream, as an ``alert`` message."""
        from eventvstream.serving.alerts.engine import AlertEngine
        from eventvstream.serving.notices import AlertRaised

        alerts = AlertEngine(
            self.settings.alerts, bank, embedder, self.decoder, metrics=self.metrics
        )

        def to_session(owner: str, stream: str, alert: dict[str, Any]) -> None:
            session = self.live.session(owner, stream) if self.live is not None else None
            if session is not None:
                session.emit(AlertRaised(alert))

        alerts.hub.sinks.append(to_session)
        return alerts

    def add_listener(self, listener: IngestListener) -> None:
        """Tell ``listener`` about every event stored (live, uploads) and every caption, from now
        on. May be called before :meth:`start`. See :mod:`eventvstream.pipeline.ingest` for the
        contract: return quickly, exceptions are logged and ignored."""
        with self._listeners_lock:
            self._listeners.append(listener)
            if self.ingest is not None:
                self.ingest.add_listener(listener)

    def check_accepting(self) -> None:
        """Raise unless new work may start (models warm, not shutting down)."""
        if self.draining:
            raise EvsError("the server is shutting down", code="draining")
        if not self.ready:
            raise EvsError(self.error or "the models are still loading", code="not_ready")

    def check_ready(self) -> None:
        """Raise unless the models are warm (reads still work while draining)."""
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
            if live_idle and self.captions_pending == 0:
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
        if self.pulls is not None:
            self.pulls.stop_all()
        if self.live is not None:
            self.live.stop()
        if self.ingest is not None:
            self.ingest.close(drain=False, timeout=10)
        if self.alerts is not None:
            self.alerts.close()
        if self.bank is not None:
            self.bank.close()
        if self.decoder is not None:
            self.decoder.close()

    def _parts(self) -> tuple[LiveIngest, StreamRegistry]:
        if self.live is None or self.streams is None:
            raise EvsError(self.error or "the models are still loading", code="not_ready")
        return self.live, self.streams

    # -- live sessions --------------------------------------------------------------------------
    def open_session(self, owner: str, stream: str, *, websocket: bool) -> LiveSession:
        """The live session of ``(owner, stream)`` (see :meth:`LiveIngest.open_session`).
        Blocking: call it in a worker thread."""
        return self._parts()[0].open_session(owner, stream, websocket=websocket)

    def configure_session(self, session: LiveSession, config: SessionConfig) -> None:
        """Apply a client's ``session.config``. Blocking (``resume: false`` deletes events)."""
        self._parts()[0].configure(session, config)

    def close_session(self, session: LiveSession) -> None:
        if self.live is not None:
            self.live.close_session(session)

    def end_input(self, session: LiveSession, query_id: str | None) -> None:
        """A client's ``input.end``: close the open event once its queued frames are encoded
        (answered by ``input.ended``)."""
        self._parts()[0].end_input(session, query_id)

    def open_events(self, scope: Scope) -> list[EventRow]:
        """The still-open event of the live session in ``scope`` so far, as an unsaved row
        (id -1) for "what is happening now?": its frames' labels pooled, spanning from the
        stream's last stored event to the newest encoded frame."""
        live = self.live
        session = live.session(scope.owner or "", scope.stream) if live and scope.stream else None
        if session is None or session.last_processed_t is None:
            return []
        frames = session.open_labels()
        if not frames:
            return []
        assert self.bank is not None
        last = self.bank.last_of_stream(session.stream, session.owner)
        start = last.end if last is not None else 0.0
        end = max(start, session.last_processed_t)
        return [
            EventRow(
                -1, session.stream, session.owner, None, None, start, end, len(frames),
                np.zeros(1, np.float32), [], [[n, p] for n, p in pool_labels(frames)], {},
                None, None, None, 0, 0, 0.0, 0.0, session.wall_at(start),
            )
        ]  # fmt: skip

    async def ingest_frame(
        self,
        session: LiveSession,
        t_client: float,
        data: bytes,
        received_at: float,
        *,
        decode_now: bool = False,
    ) -> tuple[bool, int]:
        """One frame from a client: (queued, frames dropped to make room)."""
        return await self._parts()[0].ingest_frame(
            session, t_client, data, received_at, decode_now=decode_now
        )

    def session_status(self, session: LiveSession) -> SessionStatus:
        return session.status(time.monotonic(), self.captions_pending)

    # -- pull sources (blocking) ----------------------------------------------------------------
    def start_pull(self, owner: str, stream: str, spec: PullSpec) -> dict[str, Any]:
        """Pull ``spec.url`` into the stream's live session (which registers the stream, so a
        refused pull leaves none behind); the source's status."""
        self.check_accepting()
        self._parts()
        assert self.pulls is not None
        return self.pulls.start(owner, stream, spec)

    def pull_status(self, owner: str, stream: str) -> dict[str, Any] | None:
        """The stream's pull source (state, last error, counters; URL redacted) or None."""
        return self.pulls.status(owner, stream) if self.pulls is not None else None

    def stop_pull(self, owner: str, stream: str) -> bool:
        return self.pulls.stop(owner, stream) if self.pulls is not None else False

    def pulls_by_state(self) -> dict[str, int]:
        return self.pulls.by_state() if self.pulls is not None else {}

    def is_live(self, owner: str, stream: str) -> bool:
        session = self.live.session(owner, stream) if self.live is not None else None
        return session is not None and not session.closing

    # -- streams (blocking: bank reads) ---------------------------------------------------------
    def ensure_stream(self, owner: str, stream: str) -> bool:
        """Register the stream; True when it is new."""
        return self._parts()[1].ensure(owner, stream)

    def stream_exists(self, owner: str, stream: str) -> bool:
        return self._parts()[1].exists(owner, stream)

    def describe_streams(self, owner: str, stream: str | None = None) -> list[dict[str, Any]]:
        """The owner's streams (or just ``stream``) with events, span and whether live."""
        found = self._parts()[1].describe(owner, stream)
        return [info | self._liveness(owner, info["id"]) for info in found]

    def _liveness(self, owner: str, stream: str) -> dict[str, Any]:
        return {"live": self.is_live(owner, stream), "source": self.pull_status(owner, stream)}

    def delete_stream(self, owner: str, stream: str) -> int:
        """Forget the stream and its events, after stopping its pull source if it has one;
        refuses (``stream_busy``) while a client feeds it."""
        if self.stop_pull(owner, stream):
            self._wait_closed(owner, stream)
        if self.is_live(owner, stream):
            raise EvsError("the stream is live; disconnect it first", code="stream_busy")
        return self._parts()[1].delete(owner, stream)

    def _wait_closed(self, owner: str, stream: str, timeout: float = 30.0) -> None:
        """Until the stopped session's last event is stored (the encoder thread flushes it)."""
        session = self.live.session(owner, stream) if self.live is not None else None
        if session is not None:
            session.flushed.wait(timeout)

    # -- uploads --------------------------------------------------------------------------------
    def submit_upload(self, job: UploadJob) -> UploadJob:
        self.check_accepting()
        assert self.jobs is not None
        self.ensure_stream(job.owner, job.stream)
        self.metrics.add("uploads")
        return self.jobs.submit(job)

    def get_job(self, owner: str, job_id: str) -> UploadJob | None:
        return self.jobs.get(owner, job_id) if self.jobs is not None else None

    # -- questions and lookups ------------------------------------------------------------------
    async def answer(self, question: str, scope: Scope) -> AsyncIterator[str | Answer]:
        """Text deltas (str), then the :class:`Answer`. Retrieval runs in a worker thread and
        the decoder streams through its own thread, so the loop never blocks."""
        self.check_accepting()
        answerer = self.answerer
        assert answerer is not None
        try:
            plan = await asyncio.to_thread(answerer.plan, question, scope)
        except ValueError as exc:
            raise EvsError(str(exc), code="bad_request") from None
        self.metrics.add("queries")
        if plan.request is not None:
            self.metrics.add("decoder_calls_answer")
        parts: list[str] = []
        async for delta in answerer.astream(plan):
            parts.append(delta)
            yield delta
        yield answerer.finish(plan, "".join(parts))

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
        self.check_ready()
        assert self.retriever is not None and self.bank is not None
        if q:
            hits = self.retriever.search(q, k=limit, scope=Scope(stream, owner, t0, t1))
            return [hit.event.to_dict() | {"score": round(hit.score, 4)} for hit in hits]
        rows = self.bank.events(stream=stream, owner=owner, t0=t0, t1=t1, limit=limit)
        return [row.to_dict() for row in rows]

    # -- reporting ----------------------------------------------------------------------------
    @property
    def captions_pending(self) -> int:
        return self.ingest.pending if self.ingest is not None else 0

    @property
    def session_count(self) -> int:
        return self.live.session_count if self.live is not None else 0

    def queue_depths(self) -> dict[str, int]:
        depths = self.live.queue_depths() if self.live is not None else {}
        depths["captions"] = self.captions_pending
        depths["uploads"] = self.jobs.active if self.jobs is not None else 0
        if self.alerts is not None:
            for channel, pending in self.alerts.pending().items():
                depths[f"alerts_{channel}"] = pending
        return depths

    def lag(self) -> tuple[float, float]:
        return self.live.lag() if self.live is not None else (0.0, 0.0)

    def metrics_snapshot(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """(counters, summaries with count/sum/p50/p95/p99) for ``/metrics``."""
        return self.metrics.snapshot()

    @property
    def load_s(self) -> float:
        return self.metrics.load_s
