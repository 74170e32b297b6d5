"""What the engine tells one live session's client, as typed records (not wire messages).

The engine's threads hand these to :meth:`LiveSession.emit`; ``api/protocol.py`` turns each into
its wire message, in one place. Keeping them plain records here means the serving layer never
builds JSON and never imports the API layer above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventvstream.pipeline.ingest import CaptionDone, StoredEvent


@dataclass(frozen=True)
class CaptionDelta:
    event_id: int
    delta: str


@dataclass(frozen=True)
class SessionError:
    """A problem the client should hear about; ``message`` is written for the client (never an
    exception's text, which goes to the log)."""

    code: str
    message: str
    id: str | None = None  # the question it concerns, if any


@dataclass(frozen=True)
class SessionStatus:
    frames_received: int
    frames_processed: int
    frames_dropped: int
    frames_skipped: int
    frames_bad: int
    queue_depth: int
    lag_s: float
    lag_p95_s: float
    events: int
    captions_pending: int
    source: dict[str, Any] | None = None  # a pull source's state (serving/pull.py)


@dataclass(frozen=True)
class SessionInfo:
    stream_id: str
    session_id: str
    resumed: bool
    events_in_memory: int
    config: dict[str, Any]
    limits: dict[str, int]


@dataclass(frozen=True)
class AlertRaised:
    """A watch fired on an event of this session's stream (``serving/alerts/``); ``alert`` is
    the alert as every channel carries it (docs/alerts.md)."""

    alert: dict[str, Any]


@dataclass(frozen=True)
class InputEnded:
    """The open event was closed and stored on a client's ``input.end``: questions asked now
    see everything sent so far."""

    id: str | None
    events: int  # events closed by it (0 when nothing was open)


Notice = (
    StoredEvent
    | CaptionDelta
    | CaptionDone
    | SessionError
    | SessionStatus
    | SessionInfo
    | AlertRaised
    | InputEnded
)
