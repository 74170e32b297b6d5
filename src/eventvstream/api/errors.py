"""One JSON error envelope for every failure: ``{"error": {"code": ..., "message": ...}}``.

Why one place: clients branch on ``code`` (stable) and show ``message`` (human); the HTTP status
is derived from the code, so a lower layer raising ``EvsError(code="not_found")`` becomes a 404
without knowing HTTP exists. Validation errors keep FastAPI's 422 but in the same envelope, and
anything unexpected is logged with its traceback and answered with a bare 500 that leaks nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.websockets import WebSocket

from eventvstream.errors import EvsError

log = logging.getLogger(__name__)

ECHO_CHARS = 64  # at most this much of any client-sent text is quoted back in an error
MAX_FIELD_ERRORS = 8
DEFAULT_RETRY_AFTER_S = 5  # a 429 whose cause does not know better (sessions, quotas)

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "bad_message": 400,
    "too_deep": 400,
    "bad_config": 400,
    "bad_frame": 400,
    "bad_source": 400,
    "corrupt_image": 400,
    "invalid_config": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "bad_host": 403,
    "forbidden_origin": 403,
    "not_found": 404,
    "stream_busy": 409,
    "too_many_watches": 409,
    "frame_too_large": 413,
    "image_too_large": 413,
    "upload_too_large": 413,
    "payload_too_large": 413,
    "unsupported_image": 415,
    "unsupported_media_type": 415,
    "invalid_request": 422,
    "webhook_url_forbidden": 422,
    "rate_limited": 429,
    "too_many_sessions": 429,
    "too_many_pulls": 429,
    "quota_exceeded": 429,
    "auth_throttled": 429,
    "internal_error": 500,
    "decoder_error": 502,
    "decoder_unavailable": 503,
    "not_ready": 503,
    "draining": 503,
    "memory_locked": 503,
}
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(EvsError):
    """An EvsError with response headers (e.g. Retry-After)."""

    def __init__(self, message: str, *, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, code=code)
        self.headers = headers or {}


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, 400)


def envelope(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The envelope with its status; every 429 says when to come back (``Retry-After``)."""
    status = status or status_for(code)
    if status == 429 and "Retry-After" not in (headers or {}):
        headers = {**(headers or {}), "Retry-After": str(DEFAULT_RETRY_AFTER_S)}
    return JSONResponse(envelope(code, message), status_code=status, headers=headers)


def clip(text: object, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters (marked), for quoting client input in an error:
    an error never echoes unbounded input (a 4 MB field name must not come back 4 MB long)."""
    value = str(text)
    return value if len(value) <= limit else value[:limit] + f"…(+{len(value) - limit} chars)"


def field_errors(errors: list[Any], prefix: str = "") -> str:
    """``loc: msg; …`` for pydantic errors, the client-chosen parts of ``loc`` clipped and at
    most ``MAX_FIELD_ERRORS`` listed."""
    parts = []
    for err in errors[:MAX_FIELD_ERRORS]:
        where = ".".join(clip(p, 40) for p in err.get("loc", ())) or prefix or "request"
        parts.append(f"{where}: {clip(err.get('msg', 'invalid'), 200)}")
    if len(errors) > MAX_FIELD_ERRORS:
        parts.append(f"and {len(errors) - MAX_FIELD_ERRORS} more")
    return "; ".join(parts) or "invalid request"


async def deny_websocket(websocket: WebSocket, code: str, message: str) -> None:
    """Refuse an upgrade with an HTTP status and the envelope (or close 1008/1013 when the
    server cannot send a denial response)."""
    status = status_for(code)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(code, message, status))
    else:
        await websocket.close(1013 if status in (429, 503) else 1008)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the envelope."""

    @app.exception_handler(EvsError)
    async def _evs(request: Request, exc: EvsError) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return error_response(exc.code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_request", field_errors(exc.errors()), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = CODE_BY_STATUS.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(code, message, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client left mid-body (e.g. an upload cancelled): one line, no traceback; the
        # response goes nowhere.
        client = request.client.host if request.client else "?"
        log.info("client %s disconnected during %s %s", client, request.method, request.url.path)
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response("internal_error", "internal server error", 500)
