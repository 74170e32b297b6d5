"""The WebSocket wire protocol: one pydantic model per message, both directions, in one module.

Client -> server messages are validated with the ``Client*`` models; every server -> client
message is built from a ``Server*`` model and serialised by :func:`dump`, the one place JSON is
written. The engine's threads hand typed notices (``serving/notices.py``) to a session; the
WebSocket turns them into messages with :func:`from_notice`. ``docs/protocol.md`` carries a
message reference generated from these models (:func:`reference`, written by
``scripts/gen_protocol_docs.py``; a unit test fails when the two disagree).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eventvstream.api.schemas import Citation, TimeS
from eventvstream.language.qa import Answer
from eventvstream.memory.rows import wall_times
from eventvstream.pipeline.ingest import CaptionDone, StoredEvent
from eventvstream.serving.notices import (
    AlertRaised,
    CaptionDelta,
    InputEnded,
    Notice,
    SessionError,
    SessionInfo,
    SessionStatus,
)


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    """A server -> client message (serialised only by :func:`dump`)."""


# -- client -> server ----------------------------------------------------------------------------
class ClientSessionConfig(_Client):
    """Tune the session; answered by `session.ready`."""

    type: Literal["session.config"]
    fps: float | None = Field(None, gt=0, le=120, description="Sampling rate, (0, 120].")
    generate: bool | None = Field(None, description="Caption events (when there is a decoder).")
    events: dict[str, Any] | None = Field(None, description="Keys of the profile's events section.")
    resume: bool | None = Field(
        None, description="false before the first frame: forget the stream and start over."
    )


class ClientFrame(_Client):
    """A frame as JSON (or send binary: 8-byte big-endian float64 time, then the image bytes)."""

    type: Literal["frame"]
    t: TimeS = Field(description="Client timestamp, seconds (within ±1e10).")
    data: str = Field(description="base64 JPEG/PNG bytes")
    mime: str | None = Field(None, description="image/jpeg or image/png (sniffed anyway).")


class ClientQuery(_Client):
    """A question about this stream; replies carry its `id`."""

    type: Literal["query"]
    id: str = Field(min_length=1, max_length=128, description="Echoed in the replies.")
    text: str = Field(min_length=1, max_length=2000, description="The question.")
    t0: TimeS | None = Field(None, description="Only events ending after this time (s).")
    t1: TimeS | None = Field(None, description="Only events starting before this time (s).")


class ClientInputEnd(_Client):
    """The input is over for now (a file ended, a pause): close the open event at once, so a
    question asked next sees everything sent. Answered by `input.ended`."""

    type: Literal["input.end"]
    id: str | None = Field(None, max_length=128, description="Echoed in `input.ended`.")


class ClientPing(_Client):
    """Answered by `pong`."""

    type: Literal["ping"]


# -- server -> client ----------------------------------------------------------------------------
class ServerSessionReady(Message):
    """After accept, and after every `session.config`."""

    type: Literal["session.ready"] = "session.ready"
    stream_id: str
    session_id: str
    resumed: bool = Field(description="The stream had events: its timeline continues.")
    events_in_memory: int
    config: dict[str, Any] = Field(description="fps, generate, resume, events in effect.")
    limits: dict[str, int] = Field(description="max_frame_bytes, max_message_bytes, frame_queue.")


class ServerEventBoundary(Message):
    """An event closed and is stored in memory (sent only after the durable commit)."""

    type: Literal["event.boundary"] = "event.boundary"
    stream_id: str
    event_id: int = Field(description="Id in memory (a merged event names the slot).")
    start: float = Field(description="Start of the slot (s).")
    end: float = Field(description="End of the slot (s).")
    merged: bool = Field(description="Consolidated into the previous slot.")
    labels: list[tuple[str, float]] = Field(description="Top keyframe labels with probabilities.")
    boundary: dict[str, Any] = Field(description="t, reason, threshold, fired_at, cue scores.")
    wall_start: float | None = Field(None, description="Unix time the slot began (live streams).")
    wall_end: float | None = Field(None, description="Unix time the slot ended (live streams).")


class ServerCaptionDelta(Message):
    """Caption text as the decoder writes it."""

    type: Literal["event.caption.delta"] = "event.caption.delta"
    event_id: int
    delta: str


class ServerCaptionDone(Message):
    """The caption is stored in memory."""

    type: Literal["event.caption.done"] = "event.caption.done"
    event_id: int
    caption: str
    latency_s: float = Field(description="Boundary known -> caption stored.")


class ServerStatus(Message):
    """Every `server.status_interval_s` and right after a drop; counters of this session."""

    type: Literal["status"] = "status"
    frames_received: int
    frames_processed: int
    frames_dropped: int
    frames_skipped: int
    frames_bad: int
    queue_depth: int = Field(description="Frames waiting for the encoder.")
    lag_s: float
    lag_p95_s: float
    events: int
    captions_pending: int = Field(description="The server's caption queue (all sessions).")
    source: dict[str, Any] | None = Field(
        None,
        description="When the server pulls this stream from a camera URL: the source's state "
        "(`connecting`, `live`, `reconnecting`, `failed`, ...), last error and counters, as in "
        "`GET /v1/streams/{id}`.",
    )


class ServerResponseDelta(Message):
    """Answer text as the decoder writes it."""

    type: Literal["response.delta"] = "response.delta"
    id: str
    delta: str


class ServerResponseDone(Message):
    """The whole answer with the events it cites."""

    type: Literal["response.done"] = "response.done"
    id: str
    text: str
    intent: str = Field(description="summary, now, last, first, count, presence, range or search.")
    grounded: bool = Field(description="False: memory held nothing relevant.")
    phrased: bool = Field(
        False, description="True: a decoder's phrasing passed the checks (else the template)."
    )
    citations: list[Citation]


class ServerError(Message):
    """Something went wrong; the session goes on. `message` is written for the client."""

    type: Literal["error"] = "error"
    code: str = Field(description="Stable machine-readable code.")
    message: str
    id: str | None = Field(None, description="The query it concerns (omitted otherwise).")


class ServerAlert(Message):
    """A watch of yours fired on an event of this stream (docs/alerts.md: the same JSON as the
    webhook body, MQTT and server-sent events)."""

    type: Literal["alert"] = "alert"
    alert_id: int = Field(description="Id in the alert log (SSE `id:`).")
    idempotency_key: str = Field(description="The same on every delivery of this alert.")
    watch: dict[str, Any] = Field(description="id, name, text, stream of the watch.")
    stream: str
    event: dict[str, Any] = Field(
        description="id, stream, owner, start, end, caption, labels, merge_count, keyframe_url."
    )
    why: dict[str, Any] = Field(
        description="condition, reason, score, threshold, verified, verify_answer, phase."
    )
    created: float = Field(description="Unix time the alert was raised.")


class ServerInputEnded(Message):
    """After `input.end`, once the open event is closed and stored."""

    type: Literal["input.ended"] = "input.ended"
    id: str | None = Field(None, description="The `input.end` it answers.")
    events: int = Field(description="Events it closed (0: nothing was open).")


class ServerPong(Message):
    """The answer to `ping`."""

    type: Literal["pong"] = "pong"


CLIENT_MESSAGES: tuple[type[_Client], ...] = (
    ClientSessionConfig,
    ClientFrame,
    ClientQuery,
    ClientInputEnd,
    ClientPing,
)
SERVER_MESSAGES: tuple[type[Message], ...] = (
    ServerSessionReady,
    ServerEventBoundary,
    ServerCaptionDelta,
    ServerCaptionDone,
    ServerStatus,
    ServerResponseDelta,
    ServerResponseDone,
    ServerError,
    ServerAlert,
    ServerInputEnded,
    ServerPong,
)


# -- building and writing messages -----------------------------------------------------------------
def from_notice(notice: Notice) -> Message:
    """The wire message for an engine notice."""
    if isinstance(notice, StoredEvent):
        return ServerEventBoundary(
            stream_id=notice.stream,
            event_id=notice.id,
            start=round(notice.start, 3),
            end=round(notice.end, 3),
            merged=notice.merged,
            labels=[(str(name), round(float(p), 4)) for name, p in notice.labels],
            boundary=notice.boundary,
            **wall_times(notice.wall_start, notice.start, notice.end),
        )
    if isinstance(notice, CaptionDelta):
        return ServerCaptionDelta(event_id=notice.event_id, delta=notice.delta)
    if isinstance(notice, CaptionDone):
        return ServerCaptionDone(
            event_id=notice.event.id, caption=notice.caption, latency_s=round(notice.latency_s, 4)
        )
    if isinstance(notice, SessionError):
        return ServerError(code=notice.code, message=notice.message, id=notice.id)
    if isinstance(notice, SessionStatus):
        return ServerStatus(**vars(notice))
    if isinstance(notice, SessionInfo):
        return ServerSessionReady(**vars(notice))
    if isinstance(notice, AlertRaised):
        return ServerAlert.model_validate({k: v for k, v in notice.alert.items() if k != "type"})
    if isinstance(notice, InputEnded):
        return ServerInputEnded(id=notice.id, events=notice.events)
    raise TypeError(f"not a session notice: {type(notice).__name__}")


def response_done(query_id: str, answer: Answer) -> ServerResponseDone:
    return ServerResponseDone(id=query_id, **answer.to_dict())


def _plain(value: Any) -> Any:
    """numpy scalars (and anything else with ``item``) as plain JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dump(message: Message) -> str:
    """The JSON text of a server message: the one place messages are serialised."""
    data = message.model_dump()
    if isinstance(message, ServerError) and message.id is None:
        del data["id"]
    return json.dumps(data, default=_plain)


# -- the reference in docs/protocol.md -----------------------------------------------------------
BEGIN = "<!-- BEGIN GENERATED: message reference (scripts/gen_protocol_docs.py) -->"
END = "<!-- END GENERATED: message reference -->"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "")
    return text.replace("NoneType", "null").replace("|", "or").replace("  ", " ")


def _table(model: type[BaseModel]) -> list[str]:
    kind = model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    lines = [f"#### `{kind}`", "", (model.__doc__ or "").strip(), ""]
    fields = {name: info for name, info in model.model_fields.items() if name != "type"}
    if not fields:
        return [*lines, "No fields besides `type`.", ""]
    lines += ["| field | type | required | meaning |", "|---|---|---|---|"]
    for name, info in fields.items():
        required = "yes" if info.is_required() else "no"
        lines.append(
            f"| `{name}` | `{_type_name(info.annotation)}` | {required} | "
            f"{info.description or ''} |"
        )
    return [*lines, ""]


def reference() -> str:
    """The message reference section of docs/protocol.md, generated from the models."""
    lines = [BEGIN, "", "### Message reference", ""]
    lines += ["Generated from `eventvstream/api/protocol.py`; do not edit by hand.", ""]
    lines += ["**Client → server**", ""]
    for client in CLIENT_MESSAGES:
        lines += _table(client)
    lines += ["**Server → client**", ""]
    for server in SERVER_MESSAGES:
        lines += _table(server)
    return "\n".join([*lines, END])
