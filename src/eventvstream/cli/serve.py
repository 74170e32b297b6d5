"""``evs serve``: run the API server (uvicorn, one worker) with a graceful SIGTERM drain.

Why one worker: the engine holds the models and the memory bank's single-writer lock; a second
worker process would load everything again and be refused the bank. Concurrency comes from the
engine's threads and the event loop, scale-out from more servers (each with its own data dir) or
a remote decoder.

Why a uvicorn subclass: on SIGTERM plain uvicorn first closes every WebSocket (1012) and only then
runs the application's shutdown, too late to deliver the captions still being written. Here the
signal starts the app's drain while sockets are still open (readiness 503, sessions flushed,
captions finished, clients closed with 1001), and uvicorn's own shutdown follows. A second signal
exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from eventvstream.cli.common import CONFIG_HELP, DATA_DIR_HELP, Subparsers, port_number

log = logging.getLogger("eventvstream.serve")


def add_parser(sub: Subparsers) -> None:
    serve = sub.add_parser("serve", help="run the HTTP + WebSocket API server")
    serve.add_argument("--config", "-c", default=None, help=CONFIG_HELP)
    serve.add_argument("--host", default=None, help="interface (default server.host, 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=None, help="port (default server.port, 8000)"
    )
    serve.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow serving without API keys on a non-loopback interface",
    )


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from eventvstream.api import create_app
    from eventvstream.cli.common import settings_from_args

    args.owner = None
    settings = settings_from_args(args)
    server_settings = settings.server
    updates: dict[str, Any] = {}
    if args.host is not None:
        updates["host"] = args.host
    if args.port is not None:
        updates["port"] = args.port
    if args.insecure_no_auth and not server_settings.api_keys:
        updates["auth"] = "off"
    if updates:
        server_settings = server_settings.model_validate(server_settings.model_dump() | updates)
        settings = settings.model_copy(update={"server": server_settings})
    logging.getLogger().setLevel(settings.log_level)
    lifecycle = min(logging.INFO, logging.getLevelName(settings.log_level))
    for name in (
        "eventvstream.serve",
        "eventvstream.api",
        "eventvstream.serving.engine",
        "eventvstream.serving.replica",  # leases taken over, pull sources moved
    ):
        logging.getLogger(name).setLevel(lifecycle)  # start, auth mode, ready, drain: always
    app = create_app(settings)
    auth = app.state.auth
    if auth.mode == "off":
        print(
            f"evs serve: auth OFF on {server_settings.host} (no API keys configured)",
            file=sys.stderr,
        )
    else:
        print(f"evs serve: API keys required ({len(auth.key_ids)} configured)", file=sys.stderr)
    config = uvicorn.Config(
        app,
        host=server_settings.host,
        port=server_settings.port,
        ws="websockets-sansio",
        ws_max_size=server_settings.max_message_bytes,
        lifespan="on",
        log_level="info",
        timeout_graceful_shutdown=int(server_settings.drain_timeout_s) + 1,
    )
    server = DrainingServer(config, app)
    server.run()
    code = 0 if server.started else 1
    exit_now_if_threads_linger(code)
    return code


def exit_now_if_threads_linger(code: int) -> None:
    """Exit without interpreter finalisation when worker threads are still running.

    Why: after a drain that timed out, a daemon thread can still be inside torch (a caption
    being generated). Finalising the interpreter under it aborts ("terminate called without an
    active exception", exit 134) or hangs until the container's SIGKILL (137), although the
    memory bank is already closed and checkpointed. Everything worth keeping is on disk by
    now, so flush the logs and leave with the drain's exit code.
    """
    import contextlib
    import os
    import threading

    main = threading.main_thread()
    if not any(t is not main and t.is_alive() for t in threading.enumerate()):
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class DrainingServer:
    """A uvicorn server whose first SIGTERM/SIGINT drains the app before uvicorn shuts down."""

    def __init__(self, config: Any, app: Any) -> None:
        import uvicorn

        self.app = app
        self.started = False
        self._signalled = False
        outer = self

        class _Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                outer._on_signal(sig)

        self._server = _Server(config)

    def run(self) -> None:
        self._server.run()
        self.started = self._server.started

    def _on_signal(self, sig: int) -> None:
        """Runs in the main thread between two steps of the loop: only schedule work."""
        server = self._server
        loop = getattr(self.app.state, "loop", None)
        if self._signalled or loop is None or not server.started:
            server.should_exit = True  # a second signal, or nothing to drain yet: exit now
            if sig == signal.SIGINT and self._signalled:
                server.force_exit = True
            return
        self._signalled = True
        log.info("received %s: draining", signal.Signals(sig).name)
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain_then_exit()))

    async def _drain_then_exit(self) -> None:
        from eventvstream.api.app import graceful_drain

        try:
            await graceful_drain(self.app)
        finally:
            self._server.should_exit = True
