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


class RawWebSocket:
    """A WebSocket client on a bare socket that truly never reads until told to: the frames it
    sends are built here (mask key 0, so sending 160 MB costs the test nothing), and its receive
    buffer is tiny, so the server's replies back up at once (a library client reads in the
    background)."""

    def __init__(self, port: int, path: str, rcvbuf: int = 4096, key: str | None = None) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                + (f"Authorization: Bearer {key}\r\n" if key else "")
                + "\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str, timeout: float = 5.0) -> bool:
        """Send one text message; False when the server stopped taking data (or closed)."""
        payload = text.encode()
        n = len(payload)
        if n < 126:
            header = bytes([0x81, 0x80 | n])
        elif n < 1 << 16:
            header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(header + b"\x00\x00\x00\x00" + payload)
            return True
        except OSError:  # includes the timeout
            return False

    def read_until_close(self, timeout: float = 30.0) -> tuple[int | None, str, int]:
        """Read everything the server sent: (close code, reason, messages before the close)."""
        self.sock.settimeout(timeout)
        messages = 0
        while True:
            frame = self._frame()
            if frame is None:
                return None, "", messages
            opcode, payload = frame
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                return code, payload[2:].decode(errors="replace"), messages
            messages += 1

    def _frame(self) -> tuple[int, bytes] | None:
        def need(n: int) -> bool:
            while len(self.buffer) < n:
                try:
                    chunk = self.sock.recv(1 << 16)
                except OSError:
                    return False
                if not chunk:
                    return False
                self.buffer += chunk
            return True

        if not need(2):
            return None
        opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        start = 2
        if length == 126:
            if not need(4):
                return None
            length, start = int.from_bytes(self.buffer[2:4], "big"), 4
        elif length == 127:
            if not need(10):
                return None
            length, start = int.from_bytes(self.buffer[2:10], "big"), 10
        if not need(start + length):
            return None
        payload = self.buffer[start : start + length]
        self.buffer = self.buffer[start + length :]
        return opcode, payload

    def close(self) -> None:
        self.sock.close()


def flood(
    port: int, path: str, messages: Any, budget: int, key: str | None = None
) -> tuple[int, int | None, str]:
    """Send ``messages`` (up to ``budget`` bytes) without reading, until the server stops
    taking them; then read what came back. Returns (bytes sent, close code, close reason)."""
    client = RawWebSocket(port, path, key=key)
    sent = 0
    try:
        for message in messages:
            if sent >= budget or not client.send_text(message):
                break
            sent += len(message)
        code, reason, _ = client.read_until_close()
        return sent, code, reason
    finally:
        client.close()
