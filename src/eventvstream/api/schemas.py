"""Request and response models: what the REST API accepts and returns (and what /docs shows).

The WebSocket messages are in ``api/protocol.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eventvstream.serving.alerts.spec import STREAM_MAX_CHARS
from eventvstream.serving.alerts.spec import STREAM_PATTERN as STREAM_ID_PATTERN
from eventvstream.serving.session import MAX_CLIENT_TIME_S

# STREAM_ID_PATTERN: match it with fullmatch ("$" allows a final \n), after the length check.
# Frame times, and the t0/t1 of questions and event lookups, are bounded by the session's limit
# (1e10 s: Unix times fit, 1e308 would overflow the sampling arithmetic).
MAX_TIME_S = MAX_CLIENT_TIME_S
TimeS = Annotated[float, Field(ge=-MAX_TIME_S, le=MAX_TIME_S)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ----------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, rate_limited.")
    message: str = Field(description="What went wrong, for a human.")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Route-specific error statuses, in the envelope."""
    texts = {
        409: "The stream is live (one session per stream)",
        413: "Body over the size limit",
        415: "Unsupported Content-Type",
    }
    return {s: {"model": ErrorEnvelope, "description": texts[s]} for s in statuses}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Malformed request (e.g. a body that is not JSON)",
        401: "Missing or invalid API key",
        403: "Host or Origin not allowed (bad_host, forbidden_origin)",
        404: "Unknown stream / job / event (or another key's)",
        413: "Body over the size limit (server.max_json_bytes for JSON)",
        415: "A JSON route's body sent with another Content-Type",
        422: "Invalid request",
        429: "Rate limited, over a quota or throttled (see Retry-After)",
        503: "Not ready (models loading) or shutting down",
    }.items()
}


# -- health ----------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    draining: bool
    error: str | None = None


# -- streams ---------------------------------------------------------------------------------
class SourceIn(_Strict):
    """A live source the server pulls itself (see docs/cameras.md)."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="rtsp://, rtsps://, rtmp://, http(s):// (HLS .m3u8, MJPEG, a file) or "
        "/dev/videoN. Credentials in it are used, never shown.",
    )
    fps: float = Field(2.0, gt=0, le=30, description="Frames sampled per second.")
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport.")


class StreamCreate(_Strict):
    id: str | None = Field(
        None,
        pattern=STREAM_ID_PATTERN,
        max_length=STREAM_MAX_CHARS,
        description="Stream id; a random one when omitted.",
    )
    source: SourceIn | None = Field(
        None, description="Pull this URL into the stream's live session, server side."
    )


class SourceStatus(BaseModel):
    """A pull source's state (URL redacted)."""

    source: str
    state: Literal["connecting", "live", "reconnecting", "failed", "ended", "stopped"]
    since: float = Field(description="Unix time of the last state change.")
    last_error: str | None = None
    error_code: str | None = None
    connects: int
    reconnects: int
    frames_read: int
    frames_sampled: int
    frames_dropped: int
    frames_delivered: int
    lag_p95_s: float | None = None
    behind_p95_s: float | None = None
    started_at: float | None = Field(None, description="Unix time of stream time 0.")


class Stream(BaseModel):
    id: str
    created: float | None = Field(None, description="Unix time it was registered, if it was.")
    events: int = Field(description="Events in memory.")
    start: float | None = Field(None, description="Start of its first event (s).")
    end: float | None = Field(None, description="End of its last event (s).")
    live: bool = Field(False, description="A session is receiving frames now.")
    source: SourceStatus | None = Field(None, description="Its pull source, if it has one.")
    replica: str | None = Field(
        None,
        description="With replicas on a shared database: the replica feeding it now (its lease).",
    )


class StreamList(BaseModel):
    streams: list[Stream]


class FrameAccepted(BaseModel):
    queued: bool = Field(description="False when the frame was skipped (faster than the fps).")
    frames_dropped: int = Field(description="Frames this stream has dropped so far (queue full).")


# -- events ----------------------------------------------------------------------------------
class EventOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    stream: str
    start: float
    end: float
    frames: int
    labels: list[list[Any]]
    caption: str | None = None
    text: str | None = None
    boundaries: dict[str, Any]
    keyframes: list[dict[str, Any]]
    merge_count: int = 0
    wall_start: float | None = Field(
        None, description="Unix time it began (live streams; absent for files)."
    )
    wall_end: float | None = Field(None, description="Unix time it ended (live streams).")
    score: float | None = Field(None, description="Search relevance (only with q).")


class EventList(BaseModel):
    events: list[EventOut]


# -- uploads ---------------------------------------------------------------------------------
class JobCreated(BaseModel):
    job_id: str


class Job(BaseModel):
    job_id: str
    stream: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    events: int
    error: ErrorBody | None = None
    note: str | None = None
    created: float
    finished: float | None = None


# -- questions -------------------------------------------------------------------------------
class QueryIn(_Strict):
    text: str = Field(min_length=1, max_length=2000, description="The question.")
    stream: str | None = Field(
        None,
        pattern=STREAM_ID_PATTERN,
        max_length=STREAM_MAX_CHARS,
        description="Limit to a stream.",
    )
    t0: TimeS | None = Field(None, description="Only events ending after this time (s).")
    t1: TimeS | None = Field(None, description="Only events starting before this time (s).")
    stream_response: bool = Field(False, description="Answer as text/event-stream.")


class Citation(BaseModel):
    id: int
    stream: str
    start: float
    end: float
    caption: str | None = None
    wall_start: float | None = Field(
        None, description="Unix time it began (live streams; absent for files)."
    )
    wall_end: float | None = Field(None, description="Unix time it ended (live streams).")
    relevance: float | None = None


class AnswerOut(BaseModel):
    text: str
    intent: str
    grounded: bool = Field(description="False: memory held nothing relevant.")
    citations: list[Citation]
