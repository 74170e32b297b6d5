"""kill -9 a real `evs serve` with alerts waiting in its outbox and the webhook receiver down;
start it again with the receiver up: every alert arrives, signed, exactly once.

The server stores each event (a durable commit), the alert engine raises an alert per event (a
watch that fires on every event) and commits it to the outbox with its deliveries, then tries the
receiver, which is not listening. ``GET /v1/alerts`` shows the alerts with pending deliveries
before the kill, so they were committed; after the restart the outbox drains to a real receiver
that checks the HMAC signature and counts idempotency keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from alert_support import Receiver, free_port
from api_support import EVENTS, auth, binary_frame, cut_frames, jpeg, write_profile

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-0123456789abcdef"


def _http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = auth() | ({"Content-Type": "application/json"} if data else {})
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError:
        return 0, None


class Server:
    def __init__(self, profile: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "eventvstream.cli", "serve", "--config", str(profile),
               "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ}
            )
        deadline = time.monotonic() + 120
        while _http(f"{self.url}/readyz")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill9()
                pytest.fail("evs serve did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.1)

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def alerts(self) -> list[dict[str, Any]]:
        status, body = _http(f"{self.url}/v1/alerts?limit=1000")
        assert status == 200, (status, body)
        return body["alerts"]


def stream(server: Server, frames: tuple[Any, ...]) -> list[int]:
    """Frames over the WebSocket; the event ids of the boundaries the server announced."""
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{server.port}/v1/streams/door/ws"
    ids: list[int] = []
    with connect(url, additional_headers=auth(), open_timeout=10, max_size=None) as ws:
        ws.send(json.dumps({"type": "session.config", "events": EVENTS, "generate": False}))
        for i, frame in enumerate(frames):
            ws.send(binary_frame(i / 2.0, jpeg(frame)))
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(ids) < 2:
            try:
                message = json.loads(ws.recv(timeout=1))
            except TimeoutError:
                continue
            if message["type"] == "event.boundary":
                ids.append(message["event_id"])
    return ids


def test_outbox_delivers_after_kill9_with_the_receiver_down(tmp_path):
    profile = write_profile(tmp_path / "profile.yaml", tmp_path / "data")
    data = yaml.safe_load(profile.read_text())
    data["alerts"] = {"webhook_backoff_s": 0.2, "webhook_backoff_max_s": 1.0}
    profile.write_text(yaml.safe_dump(data))
    port = free_port()
    server = Server(profile, tmp_path / "server.log")
    try:
        body = {"stream": "door", "text": "anything", "min_duration_s": 0.1, "cooldown_s": 0,
                "webhook": {"url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}}  # fmt: skip
        status, watch = _http(f"{server.url}/v1/watches", "POST", body)
        assert status == 201, watch
        announced = stream(server, cut_frames(4))
        assert len(announced) >= 2
        deadline = time.monotonic() + 20
        while len(server.alerts()) < len(announced) and time.monotonic() < deadline:
            time.sleep(0.1)
        before = server.alerts()
        assert {a["event"]["id"] for a in before} >= set(announced)
        assert all(a["deliveries"][0]["status"] == "pending" for a in before)
    finally:
        server.kill9()
    receiver = Receiver(port=port, secret=SECRET)
    server = Server(profile, tmp_path / "server.log")
    try:
        # the session's last event may have been stored (and alerted) after ``before`` was read
        after = server.alerts()
        assert {a["idempotency_key"] for a in before} <= {a["idempotency_key"] for a in after}
        assert receiver.wait_for(len(after), timeout=30)
        time.sleep(1.0)
        assert receiver.bad_signatures == 0 and receiver.duplicates == 0
        assert set(receiver.unique) == {a["idempotency_key"] for a in after}
        assert all(a["deliveries"][0]["status"] == "delivered" for a in server.alerts())
        # a watch alerts on an event once, however often the engine re-evaluated it
        assert len({(a["watch"]["id"], a["event"]["id"]) for a in after}) == len(after)
    finally:
        server.kill9()
        receiver.close()
