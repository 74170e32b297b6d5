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

Live sessions, pull sources, streams and (with replicas on a shared database) their leases are
in :mod:`eventvstream.serving.engine_streams`, mixed in here.

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

from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.language.qa import Answer
from eventvstream.memory.retrieval import Scope
from eventvstream.pipeline.ingest import IngestListener
from eventvstream.serving.engine_streams import StreamMethods
from eventvstream.serving.jobs import UploadJob
from eventvstream.serving.metrics import EngineMetrics, MetricsListener, count_phrasing

if TYPE_CHECKING:
    from eventvstream.language.base import Decoder
    from eventvstream.language.qa import Answerer
    from eventvstream.memory.bank import MemoryBank
    from eventvstream.memory.retrieval import Retriever
    from eventvstream.pipeline.ingest import Ingest
    from eventvstream.serving.alerts.engine import AlertEngine
    from eventvstream.serving.jobs import UploadJobs
    from eventvstream.serving.live import LiveIngest
    from eventvstream.serving.pull import PullSessions
    from eventvstream.serving.replica import Replica
    from eventvstream.serving.shared import SharedEmbedder, SharedEncoder
    from eventvstream.serving.streams import StreamRegistry

log = logging.getLogger(__name__)


class Engine(StreamMethods):
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
        self.replica: Replica | None = None  # leases and takeovers, on a shared database

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
        from eventvstream.memory.jobs import JobStore
        from eventvstream.memory.retrieval import Retriever
        from eventvstream.perception import load_text_embedder
        from eventvstream.pipeline.ingest import Ingest
        from eventvstream.pipeline.segmenter import Segmenter
        from eventvstream.serving.jobs import UploadJobs, UploadRunner
        from eventvstream.serving.live import LiveIngest
        from eventvstream.serving.notifier import SessionNotifier
        from eventvstream.serving.pull import PullSessions
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
        self.live = live = LiveIngest(settings, self.metrics, encoder, bank, streams, ingest)
        self.pulls = PullSessions(settings, live)
        if bank.store.backend.shared:  # replicas on one database: leases, roles, takeovers
            from eventvstream.serving.replica import Replica

            self.replica = Replica(settings, bank.store.backend, self)
            streams.shared = self.replica.leases
        self.jobs = UploadJobs(
            UploadRunner(settings, encoder, bank, ingest),
            JobStore(bank.store.backend),
            replica=self.replica.id if self.replica is not None else None,
            alive=self.replica.alive if self.replica is not None else None,
        )
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
        the live session of its stream, as an ``alert`` message. With replicas, the replica
        holding the ``alerts`` role evaluates and delivers (:mod:`eventvstream.serving.roles`)."""
        from eventvstream.serving.alerts.engine import AlertEngine
        from eventvstream.serving.notices import AlertRaised
        from eventvstream.serving.roles import ALERTS

        role = self.replica.role(ALERTS) if self.replica is not None else None
        alerts = AlertEngine(
            self.settings.alerts, bank, embedder, self.decoder, metrics=self.metrics, role=role
        )
        if role is not None:
            role.listeners.append(lambda held: alerts.wake())

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
        if self.replica is not None:  # after the last write: then others may take over
            self.replica.close()
        if self.bank is not None:
            self.bank.close()
        if self.decoder is not None:
            self.decoder.close()

    # -- uploads --------------------------------------------------------------------------------
    def submit_upload(self, job: UploadJob) -> UploadJob:
        self.check_accepting()
        assert self.jobs is not None
        self.ensure_stream(job.owner, job.stream)
        self.metrics.add("uploads")
        return self.jobs.submit(job)

    def get_job(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """The job's status (:meth:`UploadJobs.status`: this replica's, or any replica's from
        the database). Blocking."""
        return self.jobs.status(owner, job_id) if self.jobs is not None else None

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
        count_phrasing(self.metrics, plan.rejected)
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
