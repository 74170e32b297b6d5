"""Helpers of the security tests (tests/e2e/test_security_*.py): the two tenants' keys, a small
real video, raw-socket requests (for bodies no HTTP client would send) and WebSocket helpers."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ALPHA, BETA = "k-alpha", "k-beta"
KEYED_ENV = {
    "EVS_SERVER__API_KEYS": json.dumps([ALPHA, BETA]),
    "EVS_SERVER__RATE_PER_S": "1000",
    "EVS_SERVER__BURST": "1000",
    "EVS_SERVER__STATUS_INTERVAL_S": "0.2",
}
OPEN_ENV = {k: v for k, v in KEYED_ENV.items() if k != "EVS_SERVER__API_KEYS"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_video(path: Path, seconds: float = 4.0) -> Path:
    """A small real H.264 clip (ffmpeg's moving test pattern)."""
    if not path.exists():
        subprocess.run(
            [
                "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                "-i", f"testsrc2=size=128x72:rate=5:duration={seconds}",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
            ],
            check=True,
        )  # fmt: skip
    return path


def wait_job(url: str, key: str, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=bearer(key)).json()
        if job["state"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def event_count(url: str, key: str, stream: str) -> int:
    response = httpx.get(f"{url}/v1/streams/{stream}", headers=bearer(key))
    assert response.status_code == 200, response.text
    return int(response.json()["events"])


def raw_request(port: int, head: str, body_chunks: Any = (), timeout: float = 10.0) -> bytes:
    """Send a hand-made HTTP/1.1 request; returns what the server answered (b"" if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
        answer = b""
        try:
            while chunk := sock.recv(65536):  # the server closes after an early refusal
                answer += chunk
        except OSError:
            pass
        return answer


def open_slow_upload(port: int, stream: str, key: str, declared: int = 1 << 20) -> socket.socket:
    """An upload whose body is still arriving (half sent): it holds an upload slot."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            f"POST /v1/streams/{stream}/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: video/mp4\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + bytes(declared // 2)
    )
    return sock


async def ws_refusal(url: str, **kwargs: Any) -> int | None:
    """The HTTP status of a refused WebSocket upgrade, or None when it was accepted."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    try:
        async with connect(url, open_timeout=10, **kwargs):
            return None
    except InvalidStatus as exc:
        return exc.response.status_code


async def ws_until(ws: Any, want: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(0.01, deadline - time.monotonic())
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if want(message):
            return message


def no_traceback(log: str) -> None:
    if "Traceback" in log:
        pytest.fail("the server log has a traceback:\n" + log[-4000:])
