"""``create_app(settings)``: the FastAPI application, its lifespan and its graceful drain.

The lifespan starts the engine (models load in the background, so ``/healthz`` answers at once and
``/readyz`` turns 200 when they are warm) and, on shutdown, drains before closing: readiness goes
503, new sessions and uploads are refused, live sessions flush their open events, in-flight
captions finish (all bounded by ``server.drain_timeout_s``), WebSocket clients get close 1001, and
only then is the memory bank closed (a checkpoint). ``evs serve`` runs the drain as soon as SIGTERM
arrives, while the sockets are still open; a plain lifespan shutdown runs it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from eventvstream import __version__
from eventvstream.api import alerts, errors, metrics, routes, ws
from eventvstream.api.auth import Authenticator, bearer, resolve_mode
from eventvstream.api.errors import envelope, error_response
from eventvstream.api.limits import RateLimiter
from eventvstream.api.schemas import ErrorEnvelope, Health, Readiness
from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.serving.engine import Engine
from eventvstream.serving.facade import EngineFacade

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 1.0  # of the drain budget, kept for closing sockets after the work is done


def create_app(settings: Settings, *, host: str | None = None) -> FastAPI:
    """The app for ``settings``; ``host`` is where it will listen (decides the default auth
    mode: no-auth only on loopback with no keys). Raises ConfigError for an unsafe setup."""
    mode = resolve_mode(settings.server, host)
    auth = Authenticator(settings.server, mode)
    engine = Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.drain_started:  # the engine is closed for good: fail loudly, never hang
            raise RuntimeError(
                "this app has already been served and shut down; build a new one with create_app()"
            )
        app.state.loop = asyncio.get_running_loop()
        app.state.drain_done = asyncio.Event()
        engine.start()
        try:
            yield
        finally:
            await graceful_drain(app)
            await asyncio.to_thread(engine.close)

    app = FastAPI(
        title="Event-VStream",
        version=__version__,
        description="Streaming video understanding in events: live WebSocket sessions, uploads, "
        "a persistent event memory and questions answered with cited events. The WebSocket "
        "protocol is described in docs/protocol.md.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.auth = auth
    app.state.limiter = RateLimiter(settings.server.rate_per_s, settings.server.burst)
    app.state.connections = set()
    app.state.drain_started = False
    errors.install(app)
    app.add_middleware(V1Guard, state=app.state)
    app.include_router(routes.router)
    app.include_router(alerts.router)
    app.include_router(ws.router)
    _operations(app)
    _static_page(app)
    if mode == "off":
        log.warning("auth: OFF (no API keys; loopback only)")
    else:
        log.info(
            "auth: API keys required (%d keys: %s)", len(auth.key_ids), ", ".join(auth.key_ids)
        )
    return app


class V1Guard:
    """Authenticates and rate-limits every HTTP request under ``/v1/`` before anything else
    reads it, so a caller without a valid key gets 401 whatever its body or path (and learns
    nothing from validation errors). Plain ASGI, so streamed bodies stay streamed."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = Headers(scope=scope)
            try:
                principal = self.state.auth.check(bearer(headers.get("authorization")))
                client = scope.get("client") or ("?", 0)
                bucket = principal.owner if principal.authenticated else f"ip:{client[0]}"
                self.state.limiter.check(bucket)
            except EvsError as exc:
                response = error_response(
                    exc.code, exc.message, headers=getattr(exc, "headers", None)
                )
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _static_page(app: FastAPI) -> None:
    """The browser page (``api/static``): ``/`` serves its index.html, ``/static/*`` its files.
    Public, like any page: it asks for the API key and sends it as a WebSocket subprotocol."""
    static = Path(__file__).resolve().parent / "static"
    app.mount("/static", StaticFiles(directory=static, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        page = static / "index.html"
        if not page.is_file():
            raise EvsError("this build has no web page", code="not_found")
        return FileResponse(page, media_type="text/html")


def _operations(app: FastAPI) -> None:
    engine: EngineFacade = app.state.engine

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive (models may still be loading)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["operations"],
        responses={503: {"model": ErrorEnvelope, "description": "Loading, failed or draining"}},
    )
    async def readyz() -> JSONResponse:
        """200 when the models are warm and the server is not draining."""
        if engine.ready and not engine.draining:
            return JSONResponse({"ready": True, "draining": False, "error": None})
        if engine.draining:
            body = envelope("draining", "the server is shutting down")
        elif engine.error:
            body = envelope("engine_failed", engine.error)
        else:
            body = envelope("not_ready", "the models are still loading")
        return JSONResponse(body, status_code=503)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def prometheus() -> PlainTextResponse:
        """Counters, queue depths, lag and latencies in the Prometheus text format."""
        extra = {
            "websocket_connections": len(app.state.connections),
            "rate_limited_requests": app.state.limiter.limited,
        }
        text = await asyncio.to_thread(metrics.render, engine, extra)
        return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)


async def graceful_drain(app: FastAPI) -> None:
    """Stop taking work, finish what is in flight within ``drain_timeout_s``, then close every
    WebSocket with 1001. Runs once; later calls wait for the first."""
    state = app.state
    if state.drain_started:
        await state.drain_done.wait()
        return
    state.drain_started = True
    engine: EngineFacade = state.engine
    budget = state.settings.server.drain_timeout_s
    deadline = time.monotonic() + budget
    log.info("draining (up to %.0f s)", budget)
    engine.begin_drain()
    finished = await asyncio.to_thread(engine.wait_idle, deadline - min(CLOSE_GRACE_S, budget / 2))
    if not finished:
        log.warning("drain timeout: unfinished captions are skipped (events keep their labels)")
    for connection in list(state.connections):
        connection.close(ws.CLOSE_GOING_AWAY, "server going away")
    while state.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    state.drain_done.set()
    log.info("drained")
