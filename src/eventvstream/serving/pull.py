"""Server-side pull sessions: the server reads a camera URL itself (``POST /v1/streams`` with a
``source``) and feeds the frames into the same live path as WebSocket frames.

Why the same path: a pulled frame is one more frame of a :class:`LiveSession` — sampled by
timestamp, queued with drop-oldest, batched with every other stream's frames in the one encoder
thread, stored and captioned by the one ingest step. Only the producer differs: a
:class:`~eventvstream.media.live.LiveSource` thread (reconnects, backoff, state) instead of a
socket. Frames carry the source's own time (seconds since it first delivered, continuous across
reconnects) as the client timestamp, and their Unix arrival time as the session's wall clock,
so stored events say when they happened.

Quotas: a pull is a live session, so it counts against ``server.max_sessions`` and the key's
``max_sessions_per_key`` like any other; and because a pull also holds a reader thread and a
network connection for as long as it runs (nobody has to stay connected), pulls have their own
caps, ``server.max_pulls`` for the server and ``max_pulls_per_key`` for one key — so one key
cannot take every pull slot, nor every session slot with pulls nobody watches.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.media.live import STATES, LiveSource
from eventvstream.media.urls import is_live_source, redact_url
from eventvstream.serving.live import LiveIngest
from eventvstream.serving.session import LiveSession, SessionConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullSpec:
    """What to pull: the URL (may hold credentials; never shown), sampling rate, transport."""

    url: str
    fps: float = 2.0
    transport: str = "tcp"


def check_source(spec: PullSpec) -> None:
    """Raise EvsError ``bad_source`` unless ``spec.url`` is a live source URL."""
    if not is_live_source(spec.url):
        raise EvsError(
            f"not a live source URL: {redact_url(spec.url)} (rtsp://, rtmp://, http(s)://, "
            "/dev/videoN)",
            code="bad_source",
        )


class _Pull:
    def __init__(self, session: LiveSession, source: LiveSource) -> None:
        self.session, self.source = session, source
        self.thread: threading.Thread | None = None


class PullSessions:
    """The running pull sessions, one per ``(owner, stream)``."""

    def __init__(self, settings: Settings, live: LiveIngest) -> None:
        self.settings = settings
        self.live = live
        self._lock = threading.Lock()
        self._pulls: dict[tuple[str, str], _Pull | None] = {}  # None: starting

    def start(self, owner: str, stream: str, spec: PullSpec) -> dict[str, Any]:
        """Open the stream's live session and start pulling (blocking: opens the session).
        Raises EvsError ``bad_source`` / ``stream_busy`` / ``too_many_pulls`` /
        ``too_many_sessions`` / ``quota_exceeded``."""
        check_source(spec)
        key = (owner, stream)
        with self._lock:
            self._claim(key)  # held by a placeholder until the pull runs (or fails to start)
        try:
            session = self.live.open_session(owner, stream, websocket=True)
        except BaseException:
            with self._lock:
                self._pulls.pop(key, None)
            raise
        session.pulled = True
        config = session.config
        session.configure(SessionConfig(spec.fps, config.generate, config.events, config.resume))
        sampling = self.settings.sampling
        source = LiveSource(
            spec.url,
            fps=spec.fps,
            short_side=sampling.decode_short_side,
            transport=spec.transport,
            buffer_frames=max(1, self.settings.server.frame_queue),
        )
        pull = _Pull(session, source)
        session.source_status = source.status  # in the session's WebSocket status messages
        with self._lock:
            self._pulls[key] = pull
        pull.thread = threading.Thread(
            target=self._feed, args=(pull,), daemon=True, name=f"evs-pull-{stream}"
        )
        pull.thread.start()
        log.info("stream %s: pulling %s", stream, source.name)
        return source.status()

    def _claim(self, key: tuple[str, str]) -> None:
        """Reserve the pull slot of ``key`` (under the lock), within the server's and the key's
        caps."""
        server = self.settings.server
        if key in self._pulls:
            raise EvsError(f"stream {key[1]!r} is already pulling a source", code="stream_busy")
        if len(self._pulls) >= server.max_pulls:
            raise EvsError(
                f"the server pulls {server.max_pulls} sources already (server.max_pulls); "
                "stop one or retry later",
                code="too_many_pulls",
            )
        mine = sum(1 for owner, _ in self._pulls if owner == key[0])
        if mine >= server.max_pulls_per_key:
            raise EvsError(
                f"this key pulls {mine} sources (server.max_pulls_per_key); stop one first",
                code="quota_exceeded",
            )
        self._pulls[key] = None

    def _feed(self, pull: _Pull) -> None:
        """Move the source's sampled frames into the session; never builds a backlog (the
        source's ring and the session's queue both drop the oldest)."""
        source, session = pull.source, pull.session
        source.start()
        try:
            while not session.closing:
                frame = source.get(timeout=1.0)
                if frame is None:
                    if source.finished:
                        break
                    continue
                self.live.push_decoded(session, frame.t, frame.image, frame.wall)
        except EvsError as exc:  # session_closed: the stream was stopped or deleted
            log.info("stream %s: pull ended (%s)", session.stream, exc.code)
        finally:
            if source.state in ("ended", "failed"):
                log.info("stream %s: source %s", session.stream, source.state)

    def status(self, owner: str, stream: str) -> dict[str, Any] | None:
        with self._lock:
            pull = self._pulls.get((owner, stream))
        return pull.source.status() if pull is not None else None

    def stop(self, owner: str, stream: str) -> bool:
        """Stop pulling and close the session (its open event is flushed and stored)."""
        with self._lock:
            pull = self._pulls.get((owner, stream))
            if pull is not None:  # one still starting is stopped by whoever started it
                del self._pulls[(owner, stream)]
        if pull is None:
            return False
        pull.source.close()
        if pull.thread is not None:
            pull.thread.join(timeout=5.0)
        self.live.close_session(pull.session)
        return True

    def stop_all(self) -> None:
        with self._lock:
            keys = list(self._pulls)
        for owner, stream in keys:
            self.stop(owner, stream)

    def by_state(self) -> dict[str, int]:
        """How many sources are in each state (for ``/metrics``)."""
        counts = dict.fromkeys(STATES, 0)
        with self._lock:
            for pull in self._pulls.values():
                if pull is not None:
                    counts[pull.source.state] = counts.get(pull.source.state, 0) + 1
        return counts
