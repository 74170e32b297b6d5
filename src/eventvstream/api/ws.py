"""The WebSocket protocol: ``/v1/streams/{stream_id}/ws`` (docs/protocol.md is the reference).

Everything a client can get wrong before the session starts (bad stream id, missing or wrong
key, rate, too many sessions, server not ready) is refused *before accept* with a plain HTTP
status and the JSON error envelope, so a client never mistakes a refused upgrade for a session.

After accept, one task reads client messages and one task writes server messages; every outgoing
message — status ticks, boundaries and captions from the engine threads, answers, errors — goes
through one asyncio queue, so a single writer owns the socket. A bad message (corrupt frame,
malformed JSON, unknown type) gets an ``error`` message and the session goes on; only a message
over ``max_message_bytes`` closes it (1009).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import struct
import time
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from eventvstream.api import protocol
from eventvstream.api.auth import SUBPROTOCOL, websocket_key
from eventvstream.api.errors import error_response, status_for
from eventvstream.api.protocol import (
    ClientFrame,
    ClientInputEnd,
    ClientPing,
    ClientQuery,
    ClientSessionConfig,
)
from eventvstream.api.schemas import STREAM_ID_PATTERN
from eventvstream.errors import EvsError
from eventvstream.language.qa import Answer
from eventvstream.memory.retrieval import Scope
from eventvstream.serving.facade import EngineFacade
from eventvstream.serving.notices import Notice, SessionError
from eventvstream.serving.session import LiveSession, updated_config

log = logging.getLogger(__name__)

router = APIRouter()

CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY = 1000, 1001, 1008
CLOSE_TOO_BIG, CLOSE_INTERNAL, CLOSE_TRY_LATER = 1009, 1011, 1013
MAX_QUERIES_IN_FLIGHT = 4
DROP_STATUS_GAP_S = 0.2  # at most this often, a status right after a drop
_STREAM_ID = re.compile(STREAM_ID_PATTERN)


@dataclass(frozen=True)
class Close:
    code: int
    reason: str = ""


Outgoing = Notice | protocol.Message | Close


async def _deny(websocket: WebSocket, code: str, message: str) -> None:
    """Refuse an upgrade with an HTTP status and the envelope (or close 1008/1013 when the
    server cannot send a denial response)."""
    status = status_for(code)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(code, message, status))
    else:
        await websocket.close(CLOSE_TRY_LATER if status in (429, 503) else CLOSE_POLICY)


@router.websocket("/v1/streams/{stream_id}/ws")
async def stream_socket(websocket: WebSocket, stream_id: str) -> None:
    state = websocket.app.state
    engine: EngineFacade = state.engine
    if not _STREAM_ID.match(stream_id):
        await _deny(websocket, "bad_request", "stream id: 1-64 characters of [A-Za-z0-9._-]")
        return
    offered = list(websocket.scope.get("subprotocols") or [])
    key, wants_subprotocol = websocket_key(websocket.headers.get("authorization"), offered)
    try:
        principal = state.auth.check(key)
        client = websocket.client.host if websocket.client else "?"
        state.limiter.check(principal.owner if principal.authenticated else f"ip:{client}")
        engine.check_accepting()
        session = await asyncio.to_thread(
            engine.open_session, principal.owner, stream_id, websocket=True
        )
    except EvsError as exc:
        await _deny(websocket, exc.code, exc.message)
        return
    await websocket.accept(subprotocol=SUBPROTOCOL if wants_subprotocol else None)
    connection = Connection(websocket, session, state)
    state.connections.add(connection)
    try:
        await connection.run()
    finally:
        state.connections.discard(connection)


class Connection:
    """One accepted WebSocket bound to one live session."""

    def __init__(self, websocket: WebSocket, session: LiveSession, state: Any) -> None:
        self.ws = websocket
        self.session = session
        self.engine: EngineFacade = state.engine
        self.server = state.settings.server
        self.outbound: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self.group: anyio.abc.TaskGroup | None = None
        self.queries_in_flight = 0
        self._last_drop_status = 0.0

    def limits(self) -> dict[str, int]:
        return {
            "max_frame_bytes": self.server.max_frame_bytes,
            "max_message_bytes": self.server.max_message_bytes,
            "frame_queue": self.server.frame_queue,
        }

    def send(self, message: Outgoing) -> None:
        self.outbound.put_nowait(message)

    def error(self, code: str, message: str, query_id: str | None = None) -> None:
        self.send(SessionError(code, message, query_id))

    def close(self, code: int, reason: str = "") -> None:
        """Close after everything already queued has been sent (used by the drain)."""
        self.send(Close(code, reason))

    async def run(self) -> None:
        """Reader, writer and status ticker in one task group: when the reader sees the client
        leave, or the writer sends a close, the whole group is cancelled (queries included)."""
        session = self.session
        session.attach(asyncio.get_running_loop(), self.outbound)
        self.send(session.info(self.limits()))
        try:
            async with anyio.create_task_group() as group:
                self.group = group

                async def until_done(loop: Any) -> None:
                    if await loop() is not False:  # False: a close is queued, let it go out
                        group.cancel_scope.cancel()

                group.start_soon(until_done, self._receive_loop)
                group.start_soon(until_done, self._send_loop)
                group.start_soon(self._status_loop)
        finally:
            session.detach()
            if not session.pulled:  # a pulled stream goes on when its watcher leaves
                self.engine.close_session(session)

    # -- writing -------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            message = await self.outbound.get()
            if message is None:
                continue
            if isinstance(message, Close):
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.ws.close(message.code, message.reason)
                return
            wire = (
                message if isinstance(message, protocol.Message) else protocol.from_notice(message)
            )
            try:
                await self.ws.send_text(protocol.dump(wire))
            except (RuntimeError, WebSocketDisconnect, OSError):
                return  # the client is gone

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.server.status_interval_s)
            self.send(self.engine.session_status(self.session))

    # -- reading -------------------------------------------------------------------------------
    async def _receive_loop(self) -> bool:
        """Returns True when the client left, False when a close of ours is queued."""
        limit = self.server.max_message_bytes
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return True
            received_at = time.monotonic()
            data, text = message.get("bytes"), message.get("text")
            size = len(data) if data is not None else len(text or "")
            if size > limit:
                self.close(CLOSE_TOO_BIG, f"message over {limit} bytes")
                return False
            try:
                if data is not None:
                    await self._binary_frame(data, received_at)
                elif text is not None:
                    await self._text(text, received_at)
            except EvsError as exc:
                self.error(exc.code, exc.message)
            except Exception:
                log.exception("session %s: unexpected error", self.session.id)
                self.error("internal_error", "internal server error")

    async def _binary_frame(self, data: bytes, received_at: float) -> None:
        if len(data) < 9:
            raise EvsError(
                "a binary frame is an 8-byte big-endian float64 time, then JPEG/PNG bytes",
                code="bad_frame",
            )
        (t,) = struct.unpack(">d", data[:8])
        await self._frame(t, data[8:], received_at)

    async def _frame(self, t: float, payload: bytes, received_at: float) -> None:
        limit = self.server.max_frame_bytes
        if len(payload) > limit:
            raise EvsError(f"frame is {len(payload)} bytes, over {limit}", code="frame_too_large")
        _, dropped = await self.engine.ingest_frame(self.session, t, payload, received_at)
        now = time.monotonic()
        if dropped and now - self._last_drop_status >= DROP_STATUS_GAP_S:
            self._last_drop_status = now
            self.send(self.engine.session_status(self.session))

    async def _text(self, text: str, received_at: float) -> None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvsError(f"not JSON: {exc}", code="bad_message") from None
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            if kind == "frame":
                frame = ClientFrame.model_validate(data)
                try:
                    payload = base64.b64decode(frame.data, validate=True)
                except (binascii.Error, ValueError):
                    raise EvsError("frame data is not valid base64", code="bad_frame") from None
                await self._frame(frame.t, payload, received_at)
            elif kind == "session.config":
                await self._configure(ClientSessionConfig.model_validate(data))
            elif kind == "query":
                self._start_query(ClientQuery.model_validate(data))
            elif kind == "input.end":
                end = ClientInputEnd.model_validate(data)
                await asyncio.to_thread(self.engine.end_input, self.session, end.id)
            elif kind == "ping":
                ClientPing.model_validate(data)
                self.send(protocol.ServerPong())
            else:
                raise EvsError(f"unknown message type {kind!r}", code="bad_message")
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}" for e in exc.errors()
            )
            code = "bad_config" if kind == "session.config" else "bad_message"
            query_id = (
                data.get("id") if kind == "query" and isinstance(data.get("id"), str) else None
            )
            self.error(code, f"{kind}: {detail}", query_id)

    async def _configure(self, message: ClientSessionConfig) -> None:
        config = updated_config(
            self.session.config,
            fps=message.fps,
            generate=message.generate,
            events=message.events,
            resume=message.resume,
        )
        await asyncio.to_thread(self.engine.configure_session, self.session, config)
        self.send(self.session.info(self.limits()))

    # -- questions -------------------------------------------------------------------------------
    def _start_query(self, query: ClientQuery) -> None:
        if self.queries_in_flight >= MAX_QUERIES_IN_FLIGHT:
            self.error("busy", f"at most {MAX_QUERIES_IN_FLIGHT} questions at a time", query.id)
            return
        assert self.group is not None
        self.queries_in_flight += 1
        self.group.start_soon(self._answer, query)

    async def _answer(self, query: ClientQuery) -> None:
        scope = Scope(self.session.stream, self.session.owner, query.t0, query.t1)
        try:
            async for part in self.engine.answer(query.text, scope):
                if isinstance(part, Answer):
                    self.send(protocol.response_done(query.id, part))
                else:
                    self.send(protocol.ServerResponseDelta(id=query.id, delta=part))
        except EvsError as exc:
            self.error(exc.code, exc.message, query.id)
        except Exception:
            log.exception("question %s failed", query.id)
            self.error("internal_error", "answering failed", query.id)
        finally:
            self.queries_in_flight -= 1
