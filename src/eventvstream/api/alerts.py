"""REST and server-sent events for alerts: ``/v1/watches`` (CRUD), ``/v1/alerts`` (the log),
``/v1/alerts/stream`` (SSE) and event keyframes.

Watches are owner-scoped like streams: another key's watch answers 404 exactly like a missing
one. The SSE stream replays from the alert log: each alert carries ``id: <alert_id>``, so a client
that reconnects with ``Last-Event-ID`` (browsers do it by themselves) gets every alert it missed,
then live ones; lifecycle messages (``events=true``) are live only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse

from eventvstream.api.routes import Caller, StreamId
from eventvstream.api.schemas import ERROR_RESPONSES
from eventvstream.errors import EvsError
from eventvstream.serving.alerts.engine import AlertEngine
from eventvstream.serving.alerts.spec import (
    STREAM_MAX_CHARS,
    STREAM_PATTERN,
    WatchCreate,
    WatchUpdate,
)
from eventvstream.serving.facade import EngineFacade

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
HEARTBEAT_S = 15.0
REPLAY_MAX = 1000
MAX_ID = 2**62  # ids are SQLite integers: larger numbers are refused (422), not a 500


def _alerts(request: Request) -> AlertEngine:
    engine: EngineFacade = request.app.state.engine
    engine.check_ready()
    if engine.alerts is None:
        raise EvsError("alerts are disabled on this server (alerts.enabled)", code="not_found")
    return engine.alerts


# -- watches ---------------------------------------------------------------------------------------
@router.post("/watches", status_code=201, tags=["alerts"])
async def create_watch(request: Request, who: Caller, body: WatchCreate) -> dict[str, Any]:
    """A plain-language watch on one stream (or all of yours). A webhook without a ``secret``
    gets a random one, returned only in this response."""
    alerts = _alerts(request)
    return await asyncio.to_thread(alerts.watches.create, who.owner, body)


@router.get("/watches", tags=["alerts"])
async def list_watches(request: Request, who: Caller) -> dict[str, Any]:
    alerts = _alerts(request)
    return {"watches": await asyncio.to_thread(alerts.watches.list, who.owner)}


@router.get("/watches/{watch_id}", tags=["alerts"])
async def get_watch(request: Request, who: Caller, watch_id: str) -> dict[str, Any]:
    alerts = _alerts(request)
    return await asyncio.to_thread(alerts.watches.get, who.owner, watch_id)


@router.patch("/watches/{watch_id}", tags=["alerts"])
async def update_watch(
    request: Request, who: Caller, watch_id: str, body: WatchUpdate
) -> dict[str, Any]:
    """Change only the fields given."""
    alerts = _alerts(request)
    return await asyncio.to_thread(alerts.watches.update, who.owner, watch_id, body)


@router.delete("/watches/{watch_id}", status_code=204, tags=["alerts"])
async def delete_watch(request: Request, who: Caller, watch_id: str) -> Response:
    """Stop watching (alerts already raised are still delivered)."""
    alerts = _alerts(request)
    await asyncio.to_thread(alerts.watches.delete, who.owner, watch_id)
    return Response(status_code=204)


# -- the alert log ---------------------------------------------------------------------------------
@router.get("/alerts", tags=["alerts"])
async def list_alerts(
    request: Request,
    who: Caller,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Alerts with a larger id.")] = 0,
    stream: Annotated[
        str | None, Query(pattern=STREAM_PATTERN, max_length=STREAM_MAX_CHARS)
    ] = None,
    watch: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Your alerts, oldest first, each with its delivery status per channel."""
    alerts = _alerts(request)

    def read() -> list[dict[str, Any]]:
        found = alerts.outbox.alerts(
            who.owner, after_id=after, stream=stream, watch_id=watch, limit=limit
        )
        return [a.message() | {"deliveries": alerts.outbox.delivery_status(a.id)} for a in found]

    return {"alerts": await asyncio.to_thread(read)}


# Not in the OpenAPI schema: an endless stream makes generated-request tools (Schemathesis)
# hang; docs/protocol.md describes it.
@router.get("/alerts/stream", include_in_schema=False)
async def alert_stream(
    request: Request,
    who: Caller,
    stream: Annotated[
        str | None, Query(pattern=STREAM_PATTERN, max_length=STREAM_MAX_CHARS)
    ] = None,
    events: Annotated[bool, Query(description="Also event lifecycle messages.")] = False,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Replay after it.")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: ``event: alert`` (with ``id:``), and with ``events=true`` also
    ``event: event.new`` / ``event.update`` / ``event.end``; a comment every 15 s keeps
    proxies from closing the connection."""
    alerts = _alerts(request)
    since = after
    wanted = (last_event_id or "").strip()
    if wanted.isascii() and wanted.isdigit():  # str.isdigit alone takes "²", which int() refuses
        since = min(int(wanted), MAX_ID)
    subscriber = alerts.hub.subscribe(who.owner, stream, events)

    async def body() -> AsyncIterator[str]:
        sent = since or 0
        try:
            yield ": connected\n\n"
            if since is not None:  # replay what the client missed (subscribed first: no gap)
                for record in await asyncio.to_thread(
                    alerts.outbox.alerts, who.owner, after_id=since, stream=stream,
                    limit=REPLAY_MAX,
                ):  # fmt: skip
                    sent = max(sent, record.id)
                    yield _sse(record.message())
            while True:
                try:
                    message = await asyncio.wait_for(subscriber.queue.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    yield ": ping\n\n"
                    continue
                if message.get("type") == "alert":
                    if message["alert_id"] <= sent:
                        continue  # already replayed
                    sent = message["alert_id"]
                yield _sse(message)
        finally:
            alerts.hub.unsubscribe(subscriber)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(message: dict[str, Any]) -> str:
    kind = message.get("type", "message")
    head = f"id: {message['alert_id']}\n" if kind == "alert" else ""
    return f"{head}event: {kind}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"


# -- keyframes -------------------------------------------------------------------------------------
@router.get(
    "/streams/{stream_id}/events/{event_id}/keyframe",
    tags=["alerts"],
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The keyframe (JPEG)"}},
)
async def event_keyframe(
    request: Request,
    who: Caller,
    stream_id: StreamId,
    event_id: Annotated[int, PathParam(ge=0, le=MAX_ID)],
) -> FileResponse:
    """The keyframe an alert links to (kept for events of keys that have watches)."""
    alerts = _alerts(request)
    path = await asyncio.to_thread(alerts.keyframe, who.owner, stream_id, event_id)
    if path is None:
        raise EvsError(f"no keyframe for event {event_id} of {stream_id!r}", code="not_found")
    return FileResponse(path, media_type="image/jpeg")
