"""kill -9 a real `evs serve` with alerts waiting in its outbox and the webhook receiver down;
start it again with the receiver up: every alert arrives, signed, exactly once.

The server stores each event (a durable commit), the alert engine raises an alert per event (a
watch that fires on every event) and commits it to the outbox with its deliveries, then tries the
receiver, which is not listening. ``GET /v1/alerts`` shows the alerts with pending deliveries
before the kill, so they were committed; after the restart the outbox drains to a real receiver
that checks the HMAC signature and counts idempotency keys.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from alert_support import LOCAL_RECEIVERS, Receiver, free_port
from api_support import EVENTS, KEYS, cut_frames, jpeg, write_profile

from eventvstream.testdata.server import ServerProcess
from eventvstream.testdata.stream_client import StreamClient

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-0123456789abcdef"


def alerts(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = server.request("/v1/alerts?limit=1000", key=KEYS[0])
    assert status == 200, (status, body)
    return body["alerts"]


def stream(server: ServerProcess, frames: tuple[Any, ...]) -> list[int]:
    """Frames over the WebSocket; the event ids of the boundaries the server announced."""
    with StreamClient(server.port, "door", key=KEYS[0]) as client:
        client.configure(events=EVENTS, generate=False)
        client.send_frames([jpeg(f) for f in frames], pause_s=0.05)
        # generous: on a loaded 2-core CI box the first frames wait for the encoder to warm up
        client.wait_for(lambda c: len(c.boundaries) >= 2, timeout_s=90)
        return [m["event_id"] for m in client.boundaries]


def test_outbox_delivers_after_kill9_with_the_receiver_down(tmp_path):
    # a queue that holds the whole clip: on a loaded box the encoder falls behind, and drop-oldest
    # (the live default) would drop the frames around the cuts this test needs as boundaries
    profile = write_profile(tmp_path / "profile.yaml", tmp_path / "data", frame_queue=128)
    data = yaml.safe_load(profile.read_text())
    data["alerts"] = {  # fast retries, but enough of them to outlast the receiver's outage
        "webhook_backoff_s": 0.2,
        "webhook_backoff_max_s": 1.0,
        "webhook_max_attempts": 100,
        **LOCAL_RECEIVERS,
    }
    profile.write_text(yaml.safe_dump(data))
    port = free_port()
    server = ServerProcess(profile, tmp_path / "server.log", append_log=True)
    try:
        body = {"stream": "door", "text": "anything", "min_duration_s": 0.1, "cooldown_s": 0,
                "webhook": {"url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}}  # fmt: skip
        status, watch = server.request("/v1/watches", "POST", body, key=KEYS[0])
        assert status == 201, watch
        announced = stream(server, cut_frames(6))
        assert len(announced) >= 2
        deadline = time.monotonic() + 20
        while len(alerts(server)) < len(announced) and time.monotonic() < deadline:
            time.sleep(0.1)
        before = alerts(server)
        assert {a["event"]["id"] for a in before} >= set(announced)
        assert all(a["deliveries"][0]["status"] == "pending" for a in before), [
            a["deliveries"] for a in before
        ]
    finally:
        server.kill9()
    receiver = Receiver(port=port, secret=SECRET)
    server = ServerProcess(profile, tmp_path / "server.log", append_log=True)
    try:
        # the session's last event may have been stored (and alerted) after ``before`` was read
        after = alerts(server)
        assert {a["idempotency_key"] for a in before} <= {a["idempotency_key"] for a in after}
        assert receiver.wait_for(len(after), timeout=30)
        time.sleep(1.0)
        assert receiver.bad_signatures == 0 and receiver.duplicates == 0
        assert set(receiver.unique) == {a["idempotency_key"] for a in after}
        assert all(a["deliveries"][0]["status"] == "delivered" for a in alerts(server))
        # a watch alerts on an event once, however often the engine re-evaluated it
        assert len({(a["watch"]["id"], a["event"]["id"]) for a in after}) == len(after)
    finally:
        server.kill9()
        receiver.close()
