"""The FFmpeg side of live sources (:mod:`eventvstream.media.live`): opening a URL with the
right options, telling a refusal from an outage, and measuring how far decoding runs behind."""

from __future__ import annotations

import collections
import math
from typing import Any

from eventvstream.media.urls import is_device


class SourceRefused(Exception):
    """A failure that retrying cannot fix (wrong credentials, no video stream)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def open_source(url: str, transport: str, open_timeout_s: float, read_timeout_s: float) -> Any:
    """Open ``url`` with PyAV, with the options a live source needs. Raises
    :class:`SourceRefused` for wrong credentials; other FFmpeg errors propagate."""
    import av

    # Start fast (1 s of probing, not 5) and hand frames over as they arrive. Not
    # fflags=nobuffer: it throws away the frames read while probing (a file's first second).
    options = {
        "flags": "low_delay",
        "analyzeduration": "1000000",
        "probesize": "1000000",
    }
    fmt = None
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("rtsp", "rtsps"):
        options["rtsp_transport"] = transport
        options["timeout"] = str(int(read_timeout_s * 1e6))  # socket I/O, microseconds
    if is_device(url):
        fmt = "video4linux2"
    try:
        return av.open(
            url,
            format=fmt,
            options=options,
            timeout=(open_timeout_s, read_timeout_s),
        )
    except (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError) as exc:
        raise SourceRefused(
            f"the source refused the credentials ({describe(exc)}); not retrying",
            "source_unauthorized",
        ) from None
    except av.error.PermissionError as exc:
        raise SourceRefused(f"permission denied ({describe(exc)})", "source_unauthorized") from None


class BehindClock:
    """How far decoding runs behind the source: wall time elapsed minus media time elapsed,
    less the smallest such difference seen on this connection (network and start-up delay are
    constant; a decoder that cannot keep up makes it grow). Meaningful for sources with real
    timestamps (RTSP, RTMP, HLS), not for MJPEG over HTTP, whose timestamps are invented."""

    def __init__(self) -> None:
        self.origin: tuple[float, float] | None = None
        self.least = math.inf

    def behind(self, wall: float, media: float) -> float:
        if self.origin is None:
            self.origin = (wall, media)
        delta = (wall - self.origin[0]) - (media - self.origin[1])
        self.least = min(self.least, delta)
        return delta - self.least


def p95(values: collections.deque[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3) if ordered else None


def describe(exc: BaseException) -> str:
    """A one-line reason: FFmpeg's message without PyAV's errno and file-name decorations."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:200]
