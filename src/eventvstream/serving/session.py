"""One live stream session: the frames one client is feeding in, and what became of them.

Why a session object separate from the engine: the engine owns the models and runs one encoder
thread for every stream, while each stream keeps its own state — its sampling clock, its bounded
frame queue (live semantics: when the encoder falls behind, the *oldest* waiting frame is dropped
and counted, because a live viewer cares about now), its event detector, its lag statistics and
the asyncio queue its WebSocket drains. Everything here is cheap bookkeeping guarded by one lock;
no model code runs in this module.

Timeline: a stream's times only ever increase. A fresh stream uses the client's clock; a stream
that already has events in memory (a reconnect, or a server restart) is *resumed*: the first frame
is placed just after the stream's last stored event and later frames keep their spacing, so
events, citations and time-range questions stay consistent across connections.

Wall clock: each session also remembers which Unix time its first frame arrived at (a pull
source's own arrival stamp, or the server's receive time for a client's frame) and maps stream
times to the wall clock from there (``wall_at``), so every stored event carries the Unix time it
began and "what happened at 10:30?" can be answered later. A session is one segment of the
stream's timeline: a reconnect or a restart starts a new mapping, because its stream times
continue just after the last stored event while the wall clock went on through the outage.
Clients send frame times on a clock that runs at real speed (a camera's, ``performance.now()``);
a file replayed faster than real time gets wall times only as right as its pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from eventvstream.config import EventSettings, ServerSettings, Settings
from eventvstream.errors import EvsError
from eventvstream.pipeline.triggers import UnitMaker, make_unit_maker
from eventvstream.serving.notices import Notice, SessionInfo, SessionStatus

LAG_WINDOW = 256  # frames in the sliding window of the lag p95
# Client frame times beyond this (about 317 years, so Unix times fit) are refused: 1e308
# overflows the sampling arithmetic (floor(t * fps)).
MAX_CLIENT_TIME_S = 1e10


@dataclass(frozen=True)
class SessionConfig:
    """What a client may tune per session (``session.config``)."""

    fps: float
    generate: bool
    events: EventSettings
    resume: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "generate": self.generate,
            "resume": self.resume,
            "events": self.events.model_dump(mode="json"),
        }


def default_config(settings: Settings) -> SessionConfig:
    return SessionConfig(
        settings.sampling.fps, settings.language.backend != "none", settings.events
    )


def updated_config(
    previous: SessionConfig,
    *,
    fps: float | None = None,
    generate: bool | None = None,
    events: dict[str, Any] | None = None,
    resume: bool | None = None,
) -> SessionConfig:
    """``previous`` with a client's changes, validated by the same rules as a profile (so a
    client cannot set what a profile could not). Raises EvsError ``bad_config``."""
    if fps is not None and not (0 < fps <= 120 and math.isfinite(fps)):
        raise EvsError("fps must be in (0, 120]", code="bad_config")
    merged = previous.events
    if events:
        try:
            merged = EventSettings.model_validate(previous.events.model_dump() | events)
        except ValidationError as exc:
            detail = "; ".join(
                f"events.{'.'.join(str(p) for p in e['loc']) or '(all)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise EvsError(detail, code="bad_config") from None
    return SessionConfig(
        previous.fps if fps is None else float(fps),
        previous.generate if generate is None else bool(generate),
        merged,
        previous.resume if resume is None else bool(resume),
    )


@dataclass
class QueuedFrame:
    t: float  # stream time (seconds), after the resume shift
    index: int  # frame number within this session
    image: np.ndarray | bytes = field(repr=False)  # bytes until the encoder thread decodes it
    received_at: float  # time.monotonic() when the bytes arrived


class LiveSession:
    """State of one stream while it is live. Thread-safe: the event loop pushes frames, the
    engine's encoder thread takes them and the writer thread counts events."""

    def __init__(
        self,
        stream: str,
        owner: str,
        settings: Settings,
        *,
        queue_size: int,
        last_end: float,
        events_in_memory: int,
    ) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.stream = stream
        self.owner = owner
        self.source = f"live:{stream}"
        self.settings = settings
        self.config = default_config(settings)
        self.last_end = last_end
        self.events_in_memory = events_in_memory
        self.lock = threading.Lock()
        self._frames: deque[QueuedFrame] = deque()
        self._queue_size = queue_size
        self._shift: float | None = None
        #: (stream time, Unix time) of this session's first queued frame: its wall-clock anchor
        self.wall_anchor: tuple[float, float] | None = None
        self._last_t: float | None = None
        self._next_index = 0
        self.unit_maker: UnitMaker = self._new_unit_maker()
        self.frame_labels: dict[int, list[tuple[str, float]]] = {}
        self.pending_config: SessionConfig | None = None
        #: ``input.end`` requests not yet handled (their ids), in order
        self.end_requests: list[str | None] = []
        self.last_processed_t: float | None = None  # stream time of the newest encoded frame
        self.received = self.processed = self.dropped = self.skipped = self.bad = 0
        self.events = 0
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self._last_lag = 0.0
        self.last_activity = time.monotonic()
        self.attached = False  # a WebSocket is connected to this session
        self.pulled = False  # the server pulls a source URL into it (serving/pull.py)
        self.source_status: Callable[[], dict[str, Any]] | None = None  # that source's state
        self.closing = False
        self.flushed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbound: asyncio.Queue[Any] | None = None

    @property
    def resumed(self) -> bool:
        return self.events_in_memory > 0

    def _new_unit_maker(self) -> UnitMaker:
        return make_unit_maker(self.settings.model_copy(update={"events": self.config.events}))

    # -- outbound messages (any thread) ---------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        self._loop, self._outbound, self.attached = loop, queue, True

    def detach(self) -> None:
        self._loop, self._outbound, self.attached = None, None, False

    def emit(self, message: Notice) -> None:
        """Hand a message to the session's WebSocket; a no-op when nobody is attached. Safe from
        any thread: the put happens on the event loop."""
        loop, queue = self._loop, self._outbound
        if loop is None or queue is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the client is gone
            loop.call_soon_threadsafe(queue.put_nowait, message)

    # -- configuration ------------------------------------------------------------------------
    def configure(self, config: SessionConfig) -> None:
        """Takes effect at the next frame the encoder thread handles (it closes the open event
        with the old settings first, so no event mixes two configurations)."""
        with self.lock:
            events_changed = config.events != self.config.events
            self.config = config
            if events_changed:
                self.pending_config = config

    def swap_unit_maker(self) -> UnitMaker:
        """Encoder thread: install the pending configuration; returns the old unit maker so its
        open event can be flushed."""
        with self.lock:
            self.pending_config = None
            old, self.unit_maker = self.unit_maker, self._new_unit_maker()
        return old

    def restart_timeline(self) -> None:
        """``resume: false`` before the first frame: the stream starts over at the client's
        clock (the engine has forgotten its stored events)."""
        with self.lock:
            self.last_end, self.events_in_memory, self._shift = 0.0, 0, None
            self.wall_anchor = None

    # -- frames in (event loop) ---------------------------------------------------------------
    def admit(self, t_client: float) -> float | None:
        """The stream time of a frame sent at ``t_client``, or None when it falls in a sampling
        tick already taken (frames faster than the session's fps are skipped, by timestamp)."""
        if not (math.isfinite(t_client) and abs(t_client) <= MAX_CLIENT_TIME_S):
            raise EvsError(
                f"frame time must be a finite number within ±{MAX_CLIENT_TIME_S:g} s, "
                f"got {t_client:g}",
                code="bad_frame",
            )
        with self.lock:
            self.received += 1
            self.last_activity = time.monotonic()
            shift = self._shift if self._shift is not None else self._first_shift(t_client)
            t = t_client + shift
            if not self._new_tick(t):
                self.skipped += 1
                return None
            return t

    def _first_shift(self, t_client: float) -> float:
        if self.last_end > 0:  # resumed: start one sampling step after the stored timeline
            return max(0.0, self.last_end + 1.0 / self.config.fps - t_client)
        return max(0.0, -t_client)

    def _new_tick(self, t: float) -> bool:
        if self._last_t is None:
            return True
        fps = self.config.fps
        tick, last_tick = math.floor(t * fps + 1e-6), math.floor(self._last_t * fps + 1e-6)
        return t > self._last_t and tick > last_tick

    def push(
        self,
        t: float,
        image: np.ndarray | bytes,
        received_at: float,
        t_client: float,
        wall: float | None = None,
    ) -> int:
        """Queue a frame (decoded, or JPEG/PNG bytes for the encoder thread to decode).
        ``wall``: the Unix time the frame was captured, when its producer knows it (a pull
        source); else the time it was received. Returns how many frames were dropped to make
        room (0 or 1). Raises EvsError ``session_closed`` once the session is closing."""
        with self.lock:
            if self.closing:
                raise EvsError("this session is closing", code="session_closed")
            if not self._new_tick(t):  # another producer took this tick meanwhile
                self.skipped += 1
                return 0
            if self._shift is None:
                self._shift = t - t_client
            if self.wall_anchor is None:
                if wall is None:
                    wall = time.time() - (time.monotonic() - received_at)
                self.wall_anchor = (t, wall)
            self._last_t = t
            self._frames.append(QueuedFrame(t, self._next_index, image, received_at))
            self._next_index += 1
            dropped = 0
            while len(self._frames) > self._queue_size:
                self._frames.popleft()
                dropped += 1
            self.dropped += dropped
            return dropped

    def wall_at(self, t: float) -> float | None:
        """The Unix time of stream time ``t`` in this session (None before its first frame)."""
        anchor = self.wall_anchor
        return None if anchor is None else anchor[1] + (t - anchor[0])

    def count_bad(self) -> None:
        with self.lock:
            self.bad += 1

    # -- frames out (encoder thread) ----------------------------------------------------------
    def take(self) -> QueuedFrame | None:
        with self.lock:
            return self._frames.popleft() if self._frames else None

    @property
    def queue_depth(self) -> int:
        return len(self._frames)

    def request_end(self, query_id: str | None) -> None:
        """``input.end``: close the open event once the frames already queued are encoded."""
        with self.lock:
            self.end_requests.append(query_id)

    def take_end_requests(self) -> list[str | None]:
        with self.lock:
            taken, self.end_requests = self.end_requests, []
        return taken

    def open_labels(self) -> list[list[tuple[str, float]]]:
        """Labels of the frames encoded but not yet in a closed event (the open event so far).
        Read from another thread while the encoder writes: copied, retried on a race."""
        for _ in range(3):
            try:
                return list(self.frame_labels.values())
            except RuntimeError:  # changed size during iteration
                continue
        return []

    def mark_processed(self, frame: QueuedFrame, now: float) -> None:
        lag = now - frame.received_at
        with self.lock:
            self.last_processed_t = frame.t
            self.processed += 1
            self._lags.append(lag)
            self._last_lag = lag

    # -- reporting ----------------------------------------------------------------------------
    def lag(self, now: float) -> tuple[float, float]:
        """(lag_s, lag_p95_s). lag_s: how far behind live the encoder is — the latency the
        newest processed frame had, or, when a frame has been waiting longer than that, the age
        of the oldest waiting frame (a backlog shows at once, before it is processed).
        lag_p95_s: p95 of receive -> processed over the last ``LAG_WINDOW`` frames."""
        with self.lock:
            current = self._last_lag
            if self._frames:
                current = max(current, now - self._frames[0].received_at)
            p95 = float(np.percentile(self._lags, 95)) if self._lags else 0.0
        return current, p95

    def status(self, now: float, captions_pending: int) -> SessionStatus:
        lag, p95 = self.lag(now)
        with self.lock:
            return SessionStatus(
                frames_received=self.received,
                frames_processed=self.processed,
                frames_dropped=self.dropped,
                frames_skipped=self.skipped,
                frames_bad=self.bad,
                queue_depth=len(self._frames),
                lag_s=round(lag, 4),
                lag_p95_s=round(p95, 4),
                events=self.events,
                captions_pending=captions_pending,
                source=self.source_status() if self.source_status is not None else None,
            )

    def info(self, limits: dict[str, int]) -> SessionInfo:
        """What ``session.ready`` tells the client."""
        return SessionInfo(
            stream_id=self.stream,
            session_id=self.id,
            resumed=self.resumed,
            events_in_memory=self.events_in_memory,
            config=self.config.to_dict(),
            limits=limits,
        )


def round_robin_batch(
    sessions: list[LiveSession], turn: int, limit: int
) -> list[tuple[LiveSession, QueuedFrame]]:
    """Frames for one encoder batch: one per session per round, starting at session ``turn``
    (mod their count, so the first place rotates), until ``limit`` frames or none are left.
    Why: a busy stream cannot starve a quiet one of encoder time."""
    if not sessions:
        return []
    start = turn % len(sessions)
    order = sessions[start:] + sessions[:start]
    batch: list[tuple[LiveSession, QueuedFrame]] = []
    while len(batch) < limit:
        took = False
        for session in order:
            frame = session.take() if len(batch) < limit else None
            if frame is not None:
                batch.append((session, frame))
                took = True
        if not took:
            break
    return batch


def check_room(keys: list[tuple[str, str]], owner: str, server: ServerSettings) -> None:
    """Refuse a new live session when the server, or this key, is at its limit (one key cannot
    lock the others out). ``keys`` are the open sessions' ``(owner, stream)``."""
    if len(keys) >= server.max_sessions:
        raise EvsError("too many live sessions; try again later", code="too_many_sessions")
    mine = sum(1 for session_owner, _ in keys if session_owner == owner)
    if mine >= server.max_sessions_per_key:
        raise EvsError(
            f"this key has {mine} live sessions (server.max_sessions_per_key); "
            "close one or retry later",
            code="quota_exceeded",
        )
