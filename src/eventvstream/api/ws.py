"""The WebSocket protocol: ``/v1/streams/{stream_id}/ws`` (docs/protocol.md is the reference).

Everything a client can get wrong before the session starts (bad stream id, missing or wrong
key, rate, too many sessions, server not ready) is refused *before accept* with a plain HTTP
status and the JSON error envelope, so a client never mistakes a refused upgrade for a session.

After accept, one task reads client messages and one task writes server messages; every outgoing
message — status ticks, boundaries and captions from the engine threads, answers, errors — goes
through one bounded :class:`~eventvstream.api.outbox.Outbox`, so a single writer owns the socket.
A bad message (corrupt frame, malformed JSON, unknown type) gets an ``error`` message (quoting at
most a few dozen characters of what the client sent) and the session goes on; a message over
``max_message_bytes`` closes it (1009), and so does a client that stops reading (1008, once its
unsent backlog passes ``send_queue_messages`` / ``send_queue_bytes``) or whose last
``BAD_MESSAGES_IN_A_ROW`` messages were all refused (1008): the server's memory and time for a
connection stay bounded whatever the client does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import re
import struct
import time
from typing import Any

import anyio
import anyio.abc
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from eventvstream.api import protocol
from eventvstream.api.auth import SUBPROTOCOL, websocket_key
from eventvstream.api.errors import ECHO_CHARS, clip, deny_websocket, field_errors
from eventvstream.api.guard import authenticate
from eventvstream.api.outbox import Close, Outbox
from eventvstream.api.protocol import (
    ClientFrame,
    ClientInputEnd,
    ClientPing,
    ClientQuery,
    ClientSessionConfig,
)
from eventvstream.api.schemas import MAX_TIME_S, STREAM_ID_PATTERN, STREAM_MAX_CHARS
from eventvstream.api.security import nesting_error, too_deep
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
OVERFLOW_CLOSE_WAIT_S = 10.0  # how long a close 1008 waits for a non-reading client to read
MAX_ERROR_CHARS = 300  # an error message's longest text
# A client whose last this-many messages were all refused is broken or hostile: each costs a
# parse and an error; close it (1008) rather than keep answering.
BAD_MESSAGES_IN_A_ROW = 32
_STREAM_ID = re.compile(STREAM_ID_PATTERN)

Outgoing = Notice | protocol.Message | Close


def _wire(message: Notice | protocol.Message) -> str:
    """The JSON text of an outgoing message (serialised when queued, so its size is known)."""
    wire = message if isinstance(message, protocol.Message) else protocol.from_notice(message)
    return protocol.dump(wire)


def _quote(value: Any) -> str:
    """A client-sent value for an error message, short whatever its size (never a repr of
    the whole thing: a 4 MB ``type`` must cost nothing to describe)."""
    if isinstance(value, str):
        return repr(clip(value[: 2 * ECHO_CHARS]))
    return "null" if value is None else f"of type {type(value).__name__}"


async def _deny(websocket: WebSocket, code: str, message: str) -> None:
    """Refuse an upgrade (HTTP status + envelope), logged as one line."""
    client = websocket.client.host if websocket.client else "?"
    log.info("refused WebSocket %s from %s: %s", clip(websocket.url.path), client, code)
    await deny_websocket(websocket, code, message)


@router.websocket("/v1/streams/{stream_id}/ws")
async def stream_socket(websocket: WebSocket, stream_id: str) -> None:
    state = websocket.app.state
    engine: EngineFacade = state.engine
    if len(stream_id) > STREAM_MAX_CHARS or not _STREAM_ID.fullmatch(stream_id):
        await _deny(
            websocket, "bad_request", "stream id: 1-64 characters of [A-Za-z0-9._-], not only dots"
        )
        return
    offered = list(websocket.scope.get("subprotocols") or [])
    key, wants_subprotocol = websocket_key(websocket.headers.get("authorization"), offered)
    try:
        client = websocket.client.host if websocket.client else "?"
        principal = authenticate(state, key, client)
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


@router.websocket("/{path:path}")
async def no_such_socket(websocket: WebSocket, path: str) -> None:
    """Any other WebSocket path: 404 in the envelope (Starlette's default is a bare 403, which
    reads like an auth failure). Registered after the stream route, so it only catches misses."""
    await _deny(websocket, "not_found", "no WebSocket here: connect to /v1/streams/{id}/ws")


class Connection:
    """One accepted WebSocket bound to one live session."""

    def __init__(self, websocket: WebSocket, session: LiveSession, state: Any) -> None:
        self.ws = websocket
        self.session = session
        self.engine: EngineFacade = state.engine
        self.server = state.settings.server
        self.quotas = state.quotas
        self.outbound = Outbox(
            self.server.send_queue_messages, self.server.send_queue_bytes, self._overflow, _wire
        )
        self.group: anyio.abc.TaskGroup | None = None
        self.queries_in_flight = 0
        self._last_drop_status = 0.0
        self.overflow_reason: str | None = None
        self.bad_in_a_row = 0

    def limits(self) -> dict[str, int]:
        return {
            "max_frame_bytes": self.server.max_frame_bytes,
            "max_message_bytes": self.server.max_message_bytes,
            "frame_queue": self.server.frame_queue,
        }

    def send(self, message: Outgoing) -> None:
        self.outbound.put_nowait(message)

    def error(self, code: str, message: str, query_id: str | None = None) -> None:
        self.send(SessionError(code, clip(message, MAX_ERROR_CHARS), query_id))

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
        if self.overflow_reason is not None:  # sent once the client reads again, if ever
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.ws.close(CLOSE_POLICY, self.overflow_reason), OVERFLOW_CLOSE_WAIT_S
                )

    def _overflow(self) -> None:
        """The client stopped reading: end the session now; a close 1008 follows."""
        server = self.server
        self.overflow_reason = "send backlog over the limit: the client is not reading"
        client = self.ws.client.host if self.ws.client else "?"
        log.warning(
            "session %s (%s): closing, more than %d messages / %d bytes unsent",
            self.session.id,
            client,
            server.send_queue_messages,
            server.send_queue_bytes,
        )
        if self.group is not None:
            self.group.cancel_scope.cancel()

    # -- writing -------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            message = await self.outbound.get()
            if isinstance(message, Close):
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.ws.close(message.code, message.reason)
                return
            try:
                await self.ws.send_text(message)
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
                self.bad_in_a_row = 0
            except EvsError as exc:
                self.error(exc.code, exc.message, getattr(exc, "query_id", None))
                self.bad_in_a_row += 1
                if self.bad_in_a_row >= BAD_MESSAGES_IN_A_ROW:
                    log.warning(
                        "session %s: closing after %d bad messages in a row",
                        self.session.id,
                        self.bad_in_a_row,
                    )
                    self.close(CLOSE_POLICY, f"{BAD_MESSAGES_IN_A_ROW} bad messages in a row")
                    return False
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
        if not (math.isfinite(t) and abs(t) <= MAX_TIME_S):
            raise EvsError(
                f"frame time must be a finite number of seconds within ±{MAX_TIME_S:g}",
                code="bad_frame",
            )
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
        depth = self.server.max_json_depth
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvsError(f"not JSON: {exc}", code="bad_message") from None
        except RecursionError:
            raise nesting_error(depth) from None
        if too_deep(data, depth):
            raise nesting_error(depth)
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
                raise EvsError(f"unknown message type {_quote(kind)}", code="bad_message")
        except ValidationError as exc:
            detail = field_errors(exc.errors(), prefix=str(kind))
            code = "bad_config" if kind == "session.config" else "bad_message"
            error = EvsError(f"{kind}: {detail}", code=code)
            query_id = data.get("id") if kind == "query" else None
            valid_id = isinstance(query_id, str) and len(query_id) <= 128
            error.query_id = query_id if valid_id else None  # type: ignore[attr-defined]
            raise error from None

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
        try:
            release = self.quotas.start_question(self.session.owner)
        except EvsError as exc:
            self.error(exc.code, exc.message, query.id)
            return
        self.queries_in_flight += 1
        self.group.start_soon(self._answer, query, release)

    async def _answer(self, query: ClientQuery, release: Any) -> None:
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
            release()
            self.queries_in_flight -= 1
