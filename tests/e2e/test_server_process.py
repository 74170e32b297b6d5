"""A real ``evs serve`` process (uvicorn) and a real WebSocket client (the websockets library).

The path users take: start the server, stream frames of a clip with cuts, get boundaries and
captions, send SIGTERM and watch the drain (readiness 503, the open event flushed and reported,
close 1001, exit code 0 within the drain timeout), then restart on the same data directory and
read the same events back over REST.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import EVENTS, KEYS, auth, binary_frame, cut_frames, jpeg, write_profile
from cli_runner import evs

pytestmark = pytest.mark.e2e
websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

DRAIN_S = 8.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(profile: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVS_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventvstream.cli",
            "serve",
            "--config",
            str(profile),
            "--port",
            str(port),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited during start-up"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready in time")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=DRAIN_S + 10)


async def stream_then_sigterm(port: int, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Stream the clip until a captioned boundary, then SIGTERM; report what came back."""
    url = f"ws://127.0.0.1:{port}/v1/streams/door-cam/ws"
    seen: list[dict[str, Any]] = []
    result: dict[str, Any] = {"seen": seen}
    async with connect(url, additional_headers=auth(), max_size=None) as ws:

        async def until(want: Any, timeout: float = 30.0) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                message = json.loads(await asyncio.wait_for(ws.recv(), max(remaining, 0.01)))
                seen.append(message)
                if want(message):
                    return message

        await until(lambda m: m["type"] == "session.ready")
        await ws.send(json.dumps({"type": "session.config", "events": EVENTS}))
        await until(lambda m: m["type"] == "session.ready")
        for i, frame in enumerate(cut_frames()):
            await ws.send(binary_frame(i / 2.0, jpeg(frame)))
        boundary = await until(lambda m: m["type"] == "event.boundary")
        result["caption"] = await until(
            lambda m: m["type"] == "event.caption.done" and m["event_id"] == boundary["event_id"]
        )
        await until(lambda m: m["type"] == "status" and m["frames_processed"] == len(cut_frames()))
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        result["readiness"] = await asyncio.to_thread(readiness_during_drain, port)
        try:
            await until(lambda m: False, timeout=DRAIN_S + 5)
        except ConnectionClosed as closed:
            result["close_code"] = closed.rcvd.code if closed.rcvd else None
        result["closed_after_s"] = time.monotonic() - signalled
    return result


def readiness_during_drain(port: int) -> set[int]:
    """Poll /readyz until the server stops answering; the statuses it gave."""
    statuses: set[int] = set()
    deadline = time.monotonic() + DRAIN_S + 5
    while time.monotonic() < deadline:
        try:
            statuses.add(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code)
        except httpx.TransportError:
            break
        time.sleep(0.01)
    return statuses


def test_serve_drains_on_sigterm_and_remembers_after_restart(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    profile = write_profile(
        tmp_path / "serve.yaml", tmp_path / "memory", drain_timeout_s=DRAIN_S, frame_queue=64
    )
    log = tmp_path / "server.log"
    port = free_port()
    server = start_server(profile, port, log)
    try:
        wait_ready(port, server)
        result = asyncio.run(stream_then_sigterm(port, server))
        code = server.wait(timeout=DRAIN_S + 10)
    finally:
        if server.poll() is None:
            server.kill()
    output = log.read_text()
    assert code == 0, output
    assert result["close_code"] in (1001, 1012), result
    assert result["closed_after_s"] < DRAIN_S + 2
    assert 503 in result["readiness"], result["readiness"]
    boundaries = [m for m in result["seen"] if m["type"] == "event.boundary"]
    assert boundaries[-1]["boundary"]["reason"] == "end_of_stream"  # the drain flushed it
    assert "draining" in output and "API keys required" in output

    port = free_port()
    server = start_server(profile, port, log)
    try:
        wait_ready(port, server)
        url = f"http://127.0.0.1:{port}/v1/streams/door-cam/events"
        events = httpx.get(url, headers=auth()).json()["events"]
        by_id = {event["id"]: event for event in events}
        assert {b["event_id"] for b in boundaries} <= set(by_id)
        caption = result["caption"]
        assert by_id[caption["event_id"]]["caption"] == caption["caption"]
        hidden = httpx.get(url, headers=auth(KEYS[1]))
        assert hidden.status_code == 404
        assert stop(server) == 0
    finally:
        if server.poll() is None:
            server.kill()


def test_serve_refuses_no_auth_on_a_public_interface(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "open.yaml", tmp_path / "memory", api_keys=[])
    result = evs("serve", "--config", str(profile), "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr
