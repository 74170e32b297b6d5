"""Live pull sources: frames from a camera URL (RTSP, RTMP, HLS, HTTP MJPEG, http(s) files,
``/dev/videoN``) at the source's pace, sampled to ``fps``, stamped with wall-clock time.

Design:
- **one reader thread per source** runs PyAV (FFmpeg). PyAV releases the GIL while it reads and
  decodes, so eight sources on two cores cost eight threads, not eight interpreters; a thread
  that reads at the source's pace is also what keeps the network buffer from filling;
- **no backlog**: sampled frames go to a small ring (``buffer_frames``); when the consumer is
  slower, the oldest frame is dropped and counted, so what is delivered is always recent;
- **clock**: ``t`` is seconds since the source first delivered a frame, continuous across
  reconnects, so a detector sees an outage as a jump in time, never as a restart; ``wall`` is
  the Unix time of arrival, which maps stream time to "10:30" later. Live streams (no duration)
  are timed by arrival: many (MJPEG over HTTP) carry no usable timestamps. Finite sources (an
  http(s) file, an HLS playlist with an end) are timed by their own presentation times, and a
  reconnect skips what was already delivered;
- **reconnect** with exponential backoff (``backoff_s`` doubling up to ``max_backoff_s``, with
  jitter) after any failure; wrong credentials (HTTP/RTSP 401/403) or a source without video
  fail at once: retrying them would only hammer the camera;
- **state** (``connecting``, ``live``, ``reconnecting``, ``failed``, ``ended``, ``stopped``),
  counters and the last error are in :meth:`LiveSource.status`; every message names the source
  through :func:`~eventvstream.media.urls.redact_url`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventvstream.errors import MediaError
from eventvstream.media._live_io import BehindClock, SourceRefused, describe, open_source, p95
from eventvstream.media._pyav_reader import display_size, rotation_turns
from eventvstream.media.frames import rgb_converter
from eventvstream.media.images import scaled_size
from eventvstream.media.sampling import StreamSampler
from eventvstream.media.urls import redact_text, redact_url
from eventvstream.media.video import FrameChunk, VideoInfo

log = logging.getLogger(__name__)

STATES = ("connecting", "live", "reconnecting", "failed", "ended", "stopped")


@dataclass(frozen=True)
class LiveFrame:
    """One sampled frame: ``t`` s since the source started, ``wall`` Unix time of arrival."""

    t: float
    wall: float
    index: int
    image: np.ndarray


class LiveSource:
    """Pull ``url`` in a background thread; iterate (or :meth:`get`) the sampled frames.

    ``transport``: RTSP over ``tcp`` (default: works through NAT and firewalls, no loss) or
    ``udp``. ``max_failures``: give up (state ``failed``) after that many failed connections in
    a row; None retries forever. ``until_s``: end after that many seconds of stream time.
    ``buffer_frames``: sampled frames kept for a slow consumer before the oldest is dropped.

    >>> with LiveSource("rtsp://cam/stream", fps=2) as source:   # doctest: +SKIP
    ...     for chunk in source:      # FrameChunk of one frame each, like VideoStream
    ...         ...
    """

    def __init__(
        self,
        url: str,
        *,
        fps: float = 2.0,
        short_side: int = 224,
        transport: str = "tcp",
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        max_failures: int | None = None,
        until_s: float | None = None,
        buffer_frames: int = 2,
        threads: int = 1,
        on_state: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        if transport not in ("tcp", "udp"):
            raise ValueError("transport must be 'tcp' or 'udp'")
        self.url = url
        self.name = redact_url(url)
        self.fps = fps
        self.short_side = short_side
        self.transport = transport
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_failures = max_failures
        self.until_s = until_s
        self.threads = threads
        self._on_state = on_state
        self._cond = threading.Condition()
        self._ring: collections.deque[LiveFrame] = collections.deque()
        self._ring_size = max(1, buffer_frames)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None  # wall time of t = 0
        self._sampler = StreamSampler(fps)
        self._media0: float | None = None  # finite sources: media time of t = 0
        self._media_done = -math.inf  # finite sources: media time already delivered
        self._lags: collections.deque[float] = collections.deque(maxlen=256)
        self._behind: collections.deque[float] = collections.deque(maxlen=256)
        self.info: VideoInfo | None = None
        self.state = "connecting"
        self.last_error: str | None = None
        self.error_code: str | None = None
        self.connects = 0
        self.reconnects = 0
        self.failures = 0
        self.frames_read = 0
        self.frames_sampled = 0
        self.frames_dropped = 0
        self.frames_delivered = 0
        self.state_since = time.time()

    # -- lifetime ------------------------------------------------------------------------------
    def start(self) -> LiveSource:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="evs-live-source")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the reader to stop, without waiting (safe from a signal handler): iteration
        ends after the frames already buffered."""
        self._stop.set()

    def close(self) -> None:
        """Stop reading; waits for the thread at most one read timeout. Safe to call twice."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.read_timeout_s + 2.0)
        if self.state not in ("failed", "ended"):
            self._set_state("stopped")

    def __enter__(self) -> LiveSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consuming -----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in ("failed", "ended", "stopped")

    def get(self, timeout: float | None = None) -> LiveFrame | None:
        """The oldest buffered frame; None on timeout or once the source finished and the ring
        is empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._ring:
                if self.finished or self._stop.is_set():
                    return None  # after the frames already buffered
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.5 if remaining is None else min(0.5, remaining))
            frame = self._ring.popleft()
            self.frames_delivered += 1
        self._lags.append(time.time() - frame.wall)
        return frame

    def wait_ready(self, timeout: float | None = None) -> VideoInfo:
        """Block until the first frame arrived (``info`` known). Raises :class:`MediaError` if
        the source failed or was stopped first (or ``timeout`` passed): a camera that never
        answers must not keep a Ctrl-C'd command or a deleted stream waiting forever."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.info is None:
                if self.finished:
                    raise self.error()
                if self._stop.is_set():
                    raise MediaError(
                        f"{self.name}: stopped before the first frame", code="source_stopped"
                    )
                if deadline is not None and time.monotonic() > deadline:
                    raise MediaError(
                        f"{self.name}: no frame within {timeout:.0f}s ({self.state}"
                        + (f": {self.last_error}" if self.last_error else "")
                        + ")",
                        code="source_timeout",
                    )
                self._cond.wait(0.5)
            return self.info

    def error(self) -> MediaError:
        """The failure as a :class:`MediaError` (stable code, redacted message)."""
        return MediaError(
            f"{self.name}: {self.last_error or self.state}", code=self.error_code or "source_failed"
        )

    def __iter__(self) -> Iterator[FrameChunk]:
        """One :class:`FrameChunk` per sampled frame, until the source ends, fails or is
        closed. A failure raises :class:`MediaError` after the frames before it."""
        self.start()
        last_t = None
        while True:
            frame = self.get(timeout=1.0)
            if frame is None:
                if self.finished or self._stop.is_set():
                    self._final_info(last_t)
                    if self.state == "failed":
                        raise self.error()
                    return
                continue
            last_t = frame.t
            yield FrameChunk(
                times=np.array([frame.t]),
                indices=np.array([frame.index], np.int64),
                images=frame.image[None],
            )

    def _final_info(self, last_t: float | None) -> None:
        """Like a file's ``done``: the measured span, so the last event ends at the last
        frame plus one sampling period."""
        if self.info is not None and last_t is not None:
            self.info = dataclasses.replace(
                self.info,
                frames=self.frames_read,
                duration=last_t + 1.0 / self.fps,
                sampled_frames=self.frames_delivered,
                wall_start=self._t0,
            )

    def status(self) -> dict[str, Any]:
        """Everything an operator asks: state, since when, last error, counters, lag."""
        lag, behind = p95(self._lags), p95(self._behind)
        return {
            "source": self.name,
            "state": self.state,
            "since": self.state_since,
            "last_error": self.last_error,
            "error_code": self.error_code,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "frames_read": self.frames_read,
            "frames_sampled": self.frames_sampled,
            "frames_dropped": self.frames_dropped,
            "frames_delivered": self.frames_delivered,
            "lag_p95_s": lag,
            "behind_p95_s": behind,
            "started_at": self._t0,
        }

    # -- the reader thread ---------------------------------------------------------------------
    def _set_state(self, state: str, error: str | None = None, code: str | None = None) -> None:
        with self._cond:
            changed = state != self.state
            self.state = state
            if error is not None:
                self.last_error, self.error_code = error, code
            if changed:
                self.state_since = time.time()
            self._cond.notify_all()
        if changed:
            log.info("source %s: %s%s", self.name, state, f" ({error})" if error else "")
            if self._on_state is not None:
                try:
                    self._on_state(self.status())
                except Exception:  # a listener's bug must not stop the source
                    log.exception("source %s: state listener failed", self.name)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._set_state("connecting" if self.connects == 0 else "reconnecting")
            delivered_before = self.frames_read
            try:
                if self._read_once() or self.state == "ended":
                    self._set_state("ended")
                    return
                error, code = "the source closed the stream", "source_closed"
            except SourceRefused as exc:
                self._set_state("failed", str(exc), exc.code)
                return
            except Exception as exc:
                error, code = redact_text(describe(exc), self.url), "source_unreachable"
            if self._stop.is_set():
                return
            self.failures += 1
            if self.frames_read > delivered_before:
                attempt = 0  # it was live: start the backoff over
            if self.max_failures is not None and self.failures >= self.max_failures:
                self._set_state("failed", f"{error} (gave up after {self.failures} tries)", code)
                return
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            delay *= random.uniform(0.8, 1.2)
            attempt += 1
            self.reconnects += 1
            self._set_state("reconnecting", f"{error}; retrying in {delay:.1f}s", code)
            self._stop.wait(delay)

    def _read_once(self) -> bool:
        """One connection: read until it ends. True when a finite source reached its end."""
        container = open_source(self.url, self.transport, self.open_timeout_s, self.read_timeout_s)
        try:
            videos = list(container.streams.video)
            if not videos:
                raise SourceRefused("the source has no video stream", "unreadable_video")
            stream = videos[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = max(1, self.threads)
            finite = container.duration is not None and container.duration > 0
            self.connects += 1
            convert = None
            clock = BehindClock()
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return False
                now = time.time()
                if self._t0 is None:
                    self._t0 = now
                if convert is None:
                    convert = self._converter(frame, stream)
                    self._set_state("live")
                self.frames_read += 1
                if not finite and frame.time is not None:
                    self._behind.append(clock.behind(now, float(frame.time)))
                if finite and frame.time is not None:
                    media = float(frame.time)
                    if media <= self._media_done:
                        continue  # delivered before a reconnect
                    if self._media0 is None:
                        self._media0 = media
                    self._media_done = media
                    t = media - self._media0
                else:
                    t = now - self._t0
                if self.until_s is not None and t > self.until_s:
                    self._set_state("ended")
                    return False
                if self._sampler.take(t):
                    self._push(LiveFrame(t, now, self.frames_sampled, convert(frame)))
            return finite
        finally:
            container.close()

    def _converter(self, frame: Any, stream: Any) -> Callable[[Any], np.ndarray]:
        turns = rotation_turns(frame)
        width, height = display_size(frame, stream, turns)
        out_w, out_h = scaled_size(width, height, self.short_side)
        scale_w, scale_h = (out_h, out_w) if turns % 2 else (out_w, out_h)
        rate = stream.average_rate or stream.guessed_rate
        with self._cond:
            if self.info is None:
                self.info = VideoInfo(
                    path=self.name,
                    frames=0,
                    native_fps=float(rate) if rate else 0.0,
                    width=width,
                    height=height,
                    out_width=out_w,
                    out_height=out_h,
                    duration=0.0,
                    sampled_frames=0,
                    start_offset=0.0,
                    wall_start=self._t0,
                )
            self._cond.notify_all()

        return rgb_converter(scale_w, scale_h, turns)

    def _push(self, frame: LiveFrame) -> None:
        with self._cond:
            if len(self._ring) >= self._ring_size:
                self._ring.popleft()  # live semantics: the newest frames win
                self.frames_dropped += 1
            self._ring.append(frame)
            self.frames_sampled += 1
            self._cond.notify_all()
