"""The two ASGI middlewares every request passes before a route sees it.

* :class:`Shield` (outermost, HTTP and WebSocket): the Host allow-list, the Origin check for
  WebSocket upgrades and state-changing requests, and the security headers on every response.
* :class:`V1Guard` (HTTP under ``/v1/``): failed-auth throttling per client address, the API key,
  the caller's rate bucket, and — for every route but the raw frame/upload bodies — the JSON body
  read here, bounded (``max_json_bytes``, 413), refused unless it is sent as JSON (415) and
  checked for nesting (``max_json_depth``) before any parser sees it, then replayed to the route.

Plain ASGI (no BaseHTTPMiddleware), so streamed upload bodies stay streamed.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from eventvstream.api.auth import AuthError, Principal, bearer
from eventvstream.api.errors import clip, deny_websocket, error_response
from eventvstream.api.security import SECURITY_HEADERS, csp_for, nesting_error, too_deep
from eventvstream.errors import EvsError

log = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RAW_BODY_ROUTE = re.compile(r"^/v1/streams/[^/]+/(frames|uploads)\Z")


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def authenticate(state: Any, key: str | None, address: str) -> Principal:
    """The caller behind ``key``, with wrong keys counted per address (429 past the budget,
    whatever the key). A missing key is a plain 401 and not counted: it guesses nothing.
    Raises AuthError / ApiError."""
    if key is not None:
        state.auth_throttle.check(address)
    try:
        return state.auth.check(key)
    except AuthError:
        if key is not None:
            state.auth_throttle.failed(address)
        raise


class Shield:
    """Host and Origin checks and the security headers, for the page, the docs and the API."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        extra = [*SECURITY_HEADERS, (b"content-security-policy", self._csp(scope, host))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        refusal = self._refusal(kind, scope, headers, host)
        if refusal is None:
            await self.app(scope, receive, send_with_headers)
            return
        code, message = refusal
        log.warning(
            "refused %s %s from %s: %s", kind, clip(scope["path"]), client_address(scope), message
        )
        if kind == "websocket":
            await deny_websocket(WebSocket(scope, receive, send_with_headers), code, message)
        else:
            await error_response(code, message)(scope, receive, send_with_headers)

    def _csp(self, scope: Scope, host: str | None) -> bytes:
        safe_host = host if host and self.state.hosts.host_allowed(host) else "localhost"
        return csp_for(scope["path"], clip(safe_host, 255)).encode("latin-1", "replace")

    def _refusal(
        self, kind: str, scope: Scope, headers: Headers, host: str | None
    ) -> tuple[str, str] | None:
        policy = self.state.hosts
        if len(headers.getlist("host")) > 1:  # which one would a proxy or the app believe?
            return "bad_host", "more than one Host header"
        if not policy.host_allowed(host):
            return "bad_host", f"this server does not answer to host {clip(host or '')!r}"
        checks_origin = kind == "websocket" or scope.get("method", "GET") in STATE_CHANGING
        if not checks_origin:
            return None
        origin = headers.get("origin")
        if origin is None and headers.get("sec-fetch-site") == "cross-site":
            origin = "null"  # a browser that withheld Origin but says it is cross-site
        if not policy.origin_allowed(origin, host):
            return "forbidden_origin", f"origin {clip(origin)!r} is not allowed"
        return None


class V1Guard:
    """Authenticates and rate-limits every HTTP request under ``/v1/`` before anything else
    reads it, so a caller without a valid key gets 401 whatever its body or path (and learns
    nothing from validation errors); bounds and checks JSON bodies."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            address = client_address(scope)
            principal = authenticate(self.state, bearer(headers.get("authorization")), address)
            self.state.limiter.check(
                principal.owner if principal.authenticated else f"ip:{address}"
            )
            if not RAW_BODY_ROUTE.match(scope["path"]):
                receive = await self._bounded_json(headers, receive)
        except EvsError as exc:
            response = error_response(exc.code, exc.message, headers=getattr(exc, "headers", None))
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _bounded_json(self, headers: Headers, receive: Receive) -> Receive:
        """Read the whole body (it is small by rule), refuse it past ``max_json_bytes`` or
        ``max_json_depth``, and hand the route a receive that replays it."""
        settings = self.state.settings.server
        limit = settings.max_json_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _body_too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the route see it
                return _replay(b"".join(chunks), receive, first=message)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _body_too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not _is_json(headers.get("content-type")):
            raise EvsError(
                "this route takes a JSON body: send it with Content-Type: application/json",
                code="unsupported_media_type",
            )
        if body and headers.get("content-type"):
            try:
                parsed = json.loads(body)
            except RecursionError:
                raise nesting_error(settings.max_json_depth) from None
            except ValueError:
                parsed = None  # not JSON: the route answers 422 as it always has
            if too_deep(parsed, settings.max_json_depth):
                raise nesting_error(settings.max_json_depth)
        return _replay(body, receive)


def _is_json(content_type: str | None) -> bool:
    """No Content-Type (parsed as JSON, as FastAPI does), ``application/json`` or a ``+json``
    type. Anything else (``text/plain``, a form) is refused with 415 rather than reaching the
    route, whose 422 would blame the fields of a body it never parsed; it is also the one body
    type a cross-site form could send without a CORS preflight."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _body_too_large(limit: int) -> EvsError:
    return EvsError(
        f"the request body is larger than the {limit} byte limit", code="payload_too_large"
    )


def _replay(body: bytes, receive: Receive, first: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
