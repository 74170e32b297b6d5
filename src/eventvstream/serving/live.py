"""Live ingest: every stream's frames through one shared encoder thread, events to the bank.

Why one encoder thread for all sessions: a forward pass over a batch costs little more than over
one frame, so frames waiting in *different* sessions are batched together (round-robin, one per
session per turn, so a busy stream cannot starve a quiet one), up to ``encoder.batch_size``. Each
feature goes back to its own session's detector (one detector per stream; they are not
thread-safe, and only this thread touches them). Closed events go to the writer thread
(``writer.py``) that stores them (a durable commit each), so the encoder never waits on a disk
flush.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from typing import Any

import numpy as np

from eventvstream.config import Settings
from eventvstream.errors import EvsError, MediaError
from eventvstream.events.types import Event
from eventvstream.media.images import decode_image, resize_short_side, sniff_image_format
from eventvstream.memory.bank import MemoryBank
from eventvstream.perception.base import ImageEncoder
from eventvstream.pipeline.ingest import Ingest
from eventvstream.pipeline.segmenter import Segmenter
from eventvstream.serving.metrics import EngineMetrics
from eventvstream.serving.notices import InputEnded, SessionError
from eventvstream.serving.session import (
    LiveSession,
    QueuedFrame,
    SessionConfig,
    check_room,
    round_robin_batch,
)
from eventvstream.serving.streams import StreamRegistry
from eventvstream.serving.writer import EventWriter

log = logging.getLogger(__name__)

REST_IDLE_S = 30.0  # a session fed only by REST frames is closed after this long without one
BUSY_GRACE_S = 2.0  # how long a WebSocket open waits for a just-closed one to detach
BUSY_POLL_S = 0.02


class LiveIngest:
    def __init__(
        self,
        settings: Settings,
        metrics: EngineMetrics,
        encoder: ImageEncoder,
        bank: MemoryBank,
        streams: StreamRegistry,
        ingest: Ingest,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.encoder = encoder
        self.bank = bank
        self.streams = streams
        self.ingest = ingest
        self._cond = threading.Condition()
        self._sessions: dict[tuple[str, str], LiveSession] = {}
        # Every session still referenced (by its socket, or by events not yet stored), by id:
        # how ingest listeners find the session an event or caption belongs to.
        self._by_id: weakref.WeakValueDictionary[str, LiveSession] = weakref.WeakValueDictionary()
        # Closed sessions whose last events the writer has not stored yet: a reconnect to the
        # same stream waits for them, so its timeline starts after them.
        self._flushing: dict[tuple[str, str], LiveSession] = {}
        self._rr = 0
        self._stopping = False
        self._writer = EventWriter(ingest, self._flushed)
        self._thread = threading.Thread(target=self._encode_loop, name="evs-encoder", daemon=True)
        self._thread.start()

    # -- sessions (called from the event loop, blocking parts via a worker thread) -------------
    def open_session(self, owner: str, stream: str, *, websocket: bool) -> LiveSession:
        """The live session of ``(owner, stream)``: a new one, or the REST-fed one a WebSocket
        takes over. Blocking (waits for a closing predecessor to finish storing its events)."""
        key = (owner, stream)
        if websocket:
            self._await_detach(key)
        with self._cond:
            current = self._sessions.get(key) or self._flushing.get(key)
        if current is not None and current.closing:  # its last event must be stored first
            current.flushed.wait(timeout=30)
        last = self.bank.last_of_stream(stream, owner)
        stored = self.bank.count(stream=stream, owner=owner)
        with self._cond:
            current = self._sessions.get(key)
            if current is not None and not current.closing:
                if current.attached and websocket:
                    raise EvsError(f"stream {stream!r} is already live", code="stream_busy")
                current.last_activity = time.monotonic()
                return current
            check_room(list(self._sessions), owner, self.settings.server)
            session = LiveSession(
                stream,
                owner,
                self.settings,
                queue_size=self.settings.server.frame_queue,
                last_end=last.end if last is not None else 0.0,
                events_in_memory=stored,
            )
            self._sessions[key] = session
            self._by_id[session.id] = session
        self.streams.ensure(owner, stream)
        self.metrics.add("sessions_opened")
        return session

    def _await_detach(self, key: tuple[str, str]) -> None:
        """Wait up to ``BUSY_GRACE_S`` for a WebSocket still attached to ``key`` to let go.

        Why: a client that closes and reconnects at once can arrive before the server has seen
        its close (the protocol layer answers the close handshake; the app's receive loop wakes
        and detaches after). Without this grace the reconnect got 409 ``stream_busy`` although
        its predecessor was gone. A stream that stays attached still gets 409, a moment later.
        """
        deadline = time.monotonic() + BUSY_GRACE_S
        while True:
            with self._cond:
                current = self._sessions.get(key)
                if current is None or current.closing or not current.attached:
                    return
            if time.monotonic() >= deadline:
                return
            time.sleep(BUSY_POLL_S)

    def configure(self, session: LiveSession, config: SessionConfig) -> None:
        """Apply a client's ``session.config``. ``resume: false`` before the first frame starts
        the stream over: its stored events are forgotten (blocking: deletes from the bank)."""
        if not config.resume and session.resumed and session.received == 0:
            removed = self.streams.delete(session.owner, session.stream)
            self.streams.ensure(session.owner, session.stream)
            session.restart_timeline()
            log.info("stream %s restarted: forgot %d events", session.stream, removed)
        session.configure(config)

    def close_session(self, session: LiveSession) -> None:
        """The client left: flush it in the encoder thread, after its queued frames."""
        with self._cond:
            session.closing = True
            self._cond.notify_all()

    def close_all(self) -> None:
        with self._cond:
            for session in self._sessions.values():
                session.closing = True
            self._cond.notify_all()

    def session(self, owner: str, stream: str) -> LiveSession | None:
        with self._cond:
            return self._sessions.get((owner, stream))

    def by_id(self, session_id: str | None) -> LiveSession | None:
        """The session with this id while anything still holds it (else None)."""
        return self._by_id.get(session_id) if session_id is not None else None

    @property
    def session_count(self) -> int:
        with self._cond:
            return len(self._sessions)

    async def ingest_frame(
        self,
        session: LiveSession,
        t_client: float,
        data: bytes,
        received_at: float,
        *,
        decode_now: bool = False,
    ) -> tuple[bool, int]:
        """Take one frame from a client: (queued, frames dropped to make room). Frames faster
        than the session's fps are skipped by timestamp before any decoding.

        WebSocket frames are only sniffed here (JPEG/PNG magic) and queued as bytes; the
        encoder thread decodes them with the batch, and an image that turns out truncated or
        corrupt is reported to the session as an ``error`` then. That keeps receive -> queued
        to a few hundred microseconds on the event loop instead of a thread hop and a JPEG
        decode competing with the encoder. REST frames (``decode_now``) are decoded before the
        reply, so the caller gets its 400 in the response. Raises EvsError ``bad_frame``."""
        self.metrics.add("frames_received")
        t = session.admit(t_client)
        if t is None:
            self.metrics.add("frames_skipped")
            return False, 0
        payload: np.ndarray | bytes = data
        if decode_now:
            try:
                payload = await asyncio.to_thread(self._decode, data)
            except MediaError as exc:
                self._bad_frame(session)
                raise EvsError(f"{exc.message} [{exc.code}]", code="bad_frame") from None
        elif sniff_image_format(data) is None:
            self._bad_frame(session)
            raise EvsError("not a JPEG or PNG image", code="bad_frame")
        dropped = session.push(t, payload, received_at, t_client)
        self.metrics.add("frames_dropped", dropped)
        if not decode_now:
            self.metrics.observe("ingest_overhead_s", time.monotonic() - received_at)
        with self._cond:
            self._cond.notify()
        return True, dropped

    def push_decoded(
        self, session: LiveSession, t_client: float, image: np.ndarray, wall: float
    ) -> bool:
        """A frame already decoded and scaled (a pull source's, at source time ``t_client``,
        captured at Unix time ``wall``): sampled by timestamp and queued like a client's.
        Thread-safe; raises EvsError ``session_closed`` once it closes."""
        self.metrics.add("frames_received")
        t = session.admit(t_client)
        if t is None:
            self.metrics.add("frames_skipped")
            return False
        # received when the source delivered it, so the session's lag includes the time it
        # waited in the source's ring
        received_at = time.monotonic() - max(0.0, time.time() - wall)
        self.metrics.add("frames_dropped", session.push(t, image, received_at, t_client, wall))
        with self._cond:
            self._cond.notify()
        return True

    def _bad_frame(self, session: LiveSession) -> None:
        session.count_bad()
        self.metrics.add("frames_bad")

    def _decode(self, data: bytes) -> Any:
        sampling = self.settings.sampling
        image = decode_image(data, max_pixels=sampling.max_image_pixels)
        return resize_short_side(image, sampling.decode_short_side)

    # -- encoder thread -----------------------------------------------------------------------
    def _encode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._has_work():
                    self._cond.wait(timeout=1.0)
                    self._reap_idle()
                if self._stopping:
                    return
                batch = self._take_batch()
                changed = [s for s in self._sessions.values() if s.pending_config is not None]
            try:
                self._process(batch, changed)
            except Exception:  # keep serving the other sessions
                log.exception("encoding a batch failed")
                for session in {s for s, _ in batch}:
                    session.emit(SessionError("internal_error", "processing frames failed"))
            self._flush_closed()
            self._end_inputs()

    def _has_work(self) -> bool:
        return any(
            s.queue_depth or s.closing or s.pending_config or s.end_requests
            for s in self._sessions.values()
        )

    def end_input(self, session: LiveSession, query_id: str | None) -> None:
        """A client's ``input.end``: after its queued frames, close the open event now."""
        session.request_end(query_id)
        with self._cond:
            self._cond.notify_all()

    def _end_inputs(self) -> None:
        """Sessions that asked to end their input and have no frame left to encode: close the
        open event (a fresh detector continues the stream), then tell the client once the
        writer has stored it (the writer keeps order, so the notice follows the events)."""
        with self._cond:
            ready = [s for s in self._sessions.values() if s.end_requests and not s.queue_depth]
        for session in ready:
            requests = session.take_end_requests()
            closed = 0
            try:
                for event in session.swap_unit_maker().flush(None):
                    self._queue_event(session, event)
                    closed += 1
            except Exception:
                log.exception("ending the input of session %s failed", session.id)
            for query_id in requests:
                self._writer.tell(session, InputEnded(query_id, closed))
                closed = 0

    def _reap_idle(self) -> None:
        now = time.monotonic()
        for session in self._sessions.values():
            idle = now - session.last_activity > REST_IDLE_S
            if not session.attached and not session.pulled and idle:
                session.closing = True

    def _take_batch(self) -> list[tuple[LiveSession, QueuedFrame]]:
        """Up to the batch size, round-robin over sessions from a rotating start."""
        sessions = list(self._sessions.values())
        self._rr += 1
        return round_robin_batch(sessions, self._rr - 1, self.settings.encoder.batch_size)

    def _process(
        self, batch: list[tuple[LiveSession, QueuedFrame]], changed: list[LiveSession]
    ) -> None:
        for session in changed:  # new event settings: close the open event under the old ones
            for event in session.swap_unit_maker().flush(None):
                self._queue_event(session, event)
        batch = self._decoded(batch)
        if not batch:
            return
        images = [frame.image for _, frame in batch]
        k = self.settings.encoder.top_k_labels if self.encoder.info.has_labels else 0
        if k:
            features, labels = self.encoder.encode_and_label(images, k)
        else:
            features, labels = self.encoder.encode_images(images), [[] for _ in images]
        now = time.monotonic()
        for i, (session, frame) in enumerate(batch):
            session.frame_labels[frame.index] = labels[i]
            closed = session.unit_maker.push(frame.t, frame.index, features[i], frame.image)
            session.mark_processed(frame, now)
            for event in closed:
                self._queue_event(session, event)
        self.metrics.add("frames_processed", len(batch))
        self.metrics.add("batches")

    def _decoded(
        self, batch: list[tuple[LiveSession, QueuedFrame]]
    ) -> list[tuple[LiveSession, QueuedFrame]]:
        """Decode the frames queued as bytes; report and drop the unreadable ones."""
        kept = []
        for session, frame in batch:
            if isinstance(frame.image, bytes):
                try:
                    frame.image = self._decode(frame.image)
                except MediaError as exc:
                    self._bad_frame(session)
                    message = f"frame at t={frame.t:.3f}: {exc.message} [{exc.code}]"
                    session.emit(SessionError("bad_frame", message))
                    continue
            kept.append((session, frame))
        return kept

    def _queue_event(self, session: LiveSession, event: Event) -> None:
        """Attach keyframe labels (the segmenter's own step) and hand the event to the writer;
        keyframe pixels stay for the caption job, which drops them."""
        self._writer.store(session, Segmenter.attach_labels(event, session.frame_labels, True))

    def _flush_closed(self) -> None:
        """Closing sessions with nothing left in their queue: close their open event."""
        with self._cond:
            done = [
                (key, s) for key, s in self._sessions.items() if s.closing and not s.queue_depth
            ]
        for key, session in done:
            try:
                for event in session.unit_maker.flush(None):
                    self._queue_event(session, event)
            except Exception:
                log.exception("flushing session %s failed", session.id)
            with self._cond:
                if self._sessions.get(key) is session:
                    del self._sessions[key]
                self._flushing[key] = session
            self._writer.flushed(session)

    def _flushed(self, session: LiveSession) -> None:
        """Writer thread: the session's last event is stored."""
        with self._cond:
            key = (session.owner, session.stream)
            if self._flushing.get(key) is session:
                del self._flushing[key]

    # -- state ---------------------------------------------------------------------------------
    def idle(self) -> bool:
        """No session left and nothing waiting to be stored."""
        with self._cond:
            busy = bool(self._sessions or self._flushing)
        return not busy and self._writer.pending == 0

    def sessions(self) -> list[LiveSession]:
        """The live sessions now, closing ones included (the replica loop keeps their leases
        until their last event is stored)."""
        with self._cond:
            return list(self._sessions.values()) + list(self._flushing.values())

    def queue_depths(self) -> dict[str, int]:
        with self._cond:
            frames = sum(s.queue_depth for s in self._sessions.values())
        return {"frames": frames, "writer": self._writer.depth}

    def lag(self) -> tuple[float, float]:
        """Worst (lag_s, lag_p95_s) over live sessions."""
        now = time.monotonic()
        with self._cond:
            lags = [s.lag(now) for s in self._sessions.values()]
        return (max((x for x, _ in lags), default=0.0), max((p for _, p in lags), default=0.0))

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._writer.stop(timeout)
