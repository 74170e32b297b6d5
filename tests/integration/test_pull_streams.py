"""Server-side pull sessions: ``POST /v1/streams`` with a ``source`` makes the server read a
real MJPEG camera (an HTTP server in the test) into the stream's live session; its state shows in
``GET /v1/streams/{id}`` and ``/metrics``; a camera reboot reconnects; credentials never leak;
events carry wall-clock times that questions about "10:30" use, across a restart of the pull;
one key cannot take every pull slot."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api_support import KEYS, tiny_settings, wait_ready
from fastapi.testclient import TestClient
from servers.mjpeg import MjpegCamera

from eventvstream.api import create_app

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {KEYS[0]}"}
OTHER = {"Authorization": f"Bearer {KEYS[1]}"}
SECRET = "cam-s3cret"


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[TestClient]:
    settings = tiny_settings(
        tmp_path_factory.mktemp("pull-memory"), max_pulls=3, max_pulls_per_key=2
    )
    # events of at most 2 s, never merged, so a few seconds of camera make several slots
    # (the wall-clock test; the test pattern looks the same from one second to the next)
    settings = settings.model_copy(
        update={
            "events": settings.events.model_copy(update={"max_event_s": 2.0}),
            "memory": settings.memory.model_copy(update={"merge_threshold": 1.0}),
        }
    )
    app = create_app(settings)
    with TestClient(app) as c:
        wait_ready(c, timeout=300)  # a busy 2-core machine loads slowly
        yield c


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


def source_of(client: TestClient, stream: str) -> dict[str, Any] | None:
    response = client.get(f"/v1/streams/{stream}", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["source"]


def test_pull_a_camera_through_reboot_and_delete(client, jpegs):
    cam = MjpegCamera(jpegs, credentials=f"admin:{SECRET}").start()
    try:
        url = f"http://admin:{SECRET}@127.0.0.1:{cam.port}/video.mjpg"
        created = client.post(
            "/v1/streams", json={"id": "door", "source": {"url": url, "fps": 2}}, headers=AUTH
        )
        assert created.status_code == 201, created.text
        assert SECRET not in created.text and "***" in created.json()["source"]["source"]

        live = until(lambda: (s := source_of(client, "door")) and s["state"] == "live" and s)
        assert live["connects"] == 1
        until(lambda: source_of(client, "door")["frames_delivered"] >= 4)
        assert client.get("/v1/streams/door", headers=AUTH).json()["live"] is True
        assert client.get("/v1/streams/door", headers=OTHER).status_code == 404  # per key
        metrics = client.get("/metrics", headers=AUTH).text
        assert 'evs_pull_sources{state="live"} 1' in metrics
        # a WebSocket watcher sees the source's state in its status messages, and leaving
        # does not stop the pull
        with client.websocket_connect("/v1/streams/door/ws", headers=AUTH) as ws:
            status = until(lambda: (m := ws.receive_json())["type"] == "status" and m)
        assert status["source"]["state"] == "live" and SECRET not in str(status)
        time.sleep(0.5)
        assert source_of(client, "door")["state"] == "live"
        assert client.get("/v1/streams/door", headers=AUTH).json()["live"] is True

        cam.stop()  # the camera reboots
        down = until(lambda: (s := source_of(client, "door"))["state"] == "reconnecting" and s)
        assert down["last_error"] and SECRET not in down["last_error"]
        cam.start()
        back = until(lambda: (s := source_of(client, "door"))["connects"] == 2 and s, 15)
        assert back["state"] == "live"

        deleted = client.delete("/v1/streams/door", headers=AUTH)
        assert deleted.status_code == 204, deleted.text
        assert client.get("/v1/streams/door", headers=AUTH).status_code == 404
        metrics = client.get("/metrics", headers=AUTH).text
        assert 'evs_pull_sources{state="live"} 0' in metrics
    finally:
        cam.stop()


def test_wrong_credentials_fail_clearly(client, jpegs):
    cam = MjpegCamera(jpegs, credentials="admin:right").start()
    try:
        url = f"http://admin:{SECRET}@127.0.0.1:{cam.port}/video.mjpg"
        created = client.post(
            "/v1/streams", json={"id": "gate", "source": {"url": url}}, headers=AUTH
        )
        assert created.status_code == 201
        failed = until(lambda: (s := source_of(client, "gate"))["state"] == "failed" and s)
        assert failed["error_code"] == "source_unauthorized" and failed["reconnects"] == 0
        assert SECRET not in str(failed) and cam.requests <= 2
        assert client.delete("/v1/streams/gate", headers=AUTH).status_code == 204
    finally:
        cam.stop()


def test_not_a_live_source_is_refused(client):
    bad = client.post(
        "/v1/streams",
        json={"id": "files", "source": {"url": "/etc/passwd"}},
        headers=AUTH,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_source"
    invalid = client.post(
        "/v1/streams",
        json={"id": "files", "source": {"url": "rtsp://x/y", "fps": 0}},
        headers=AUTH,
    )
    assert invalid.status_code == 422


def events_of(client: TestClient, stream: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/streams/{stream}/events?limit=500", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def stop_pull(client: TestClient, stream: str) -> None:
    """Stop pulling but keep the stream's events (no API does that: DELETE forgets them), as a
    server restart or an operator would; waits until its open event is stored."""
    engine = client.app.state.engine
    owner = next(o for o, s in engine.pulls._pulls if s == stream)
    assert engine.stop_pull(owner, stream)
    until(lambda: not client.get(f"/v1/streams/{stream}", headers=AUTH).json()["live"])
    until(lambda: engine.live.idle())


def ask(client: TestClient, text: str, stream: str) -> dict[str, Any]:
    response = client.post("/v1/query", json={"text": text, "stream": stream}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(wall))  # language.timezone: UTC by default


def test_wall_clock_questions_across_a_restarted_pull(client, jpegs):
    """Two pull sessions with an outage between them: stream time continues just after the
    first session's last event, the wall clock does not; "since"/"at" a clock time and "between"
    two find the events that happened then, not the ones at that stream time."""
    cam = MjpegCamera(jpegs).start()
    body = {"id": "yard", "source": {"url": cam.url, "fps": 2}}
    try:
        began = time.time()
        assert client.post("/v1/streams", json=body, headers=AUTH).status_code == 201
        until(lambda: len(events_of(client, "yard")) >= 3, 60)
        stop_pull(client, "yard")
        first = events_of(client, "yard")
        time.sleep(4.0)  # the outage
        restarted = time.time()
        assert client.post("/v1/streams", json=body, headers=AUTH).status_code == 200
        until(lambda: len(events_of(client, "yard")) >= len(first) + 2, 60)
        stop_pull(client, "yard")
    finally:
        cam.stop()
    events = events_of(client, "yard")
    second = events[len(first) :]
    assert [e["id"] for e in events[: len(first)]] == [e["id"] for e in first]
    # every event has wall-clock times, in the order of its stream times, at the real moments
    assert all(
        e["wall_end"] - e["wall_start"] == pytest.approx(e["end"] - e["start"], abs=0.01)
        for e in events
    )
    assert began <= first[0]["wall_start"] <= began + 10
    assert restarted <= second[0]["wall_start"] <= restarted + 10
    walls = [e["wall_start"] for e in events]
    assert walls == sorted(walls)
    # the restart continued stream time just after the last event, but the wall clock went on
    assert second[0]["start"] - first[-1]["end"] < 2.0
    assert second[0]["wall_start"] - first[-1]["wall_end"] > 3.5

    in_gap = math.ceil(first[-1]["wall_end"]) + 1  # a whole second inside the outage
    assert in_gap < second[0]["wall_start"]
    since = ask(client, f"what happened since {clock(in_gap)}?", "yard")
    assert {c["id"] for c in since["citations"]} == {e["id"] for e in second}, since
    assert all(c["wall_start"] >= in_gap for c in since["citations"])

    target = first[1]
    moment = math.floor((target["wall_start"] + target["wall_end"]) / 2)
    assert target["wall_start"] <= moment < target["wall_end"]
    at = ask(client, f"what happened at {clock(moment)}?", "yard")
    cited = {c["id"] for c in at["citations"]}
    assert target["id"] in cited, at
    # only events overlapping that second of the wall clock
    overlapping = {
        e["id"] for e in events if e["wall_end"] >= moment and e["wall_start"] <= moment + 1
    }
    assert cited <= overlapping, (at, overlapping)
    # and says when on the clock, as asked: the target's own wall-clock span, in UTC
    assert f"at {clock(moment)} UTC" in at["text"], at["text"]
    assert f"[#{target['id']}] {clock(target['wall_start'])} to " in at["text"], at["text"]

    nothing = ask(client, f"what happened at {clock(in_gap)}?", "yard")
    assert nothing["citations"] == [], nothing  # the camera was off then

    # a range of clock times across the outage: the events either side of it, none outside
    low, high = math.floor(first[-1]["wall_start"]), math.ceil(second[0]["wall_start"])
    across = ask(client, f"what happened between {clock(low)} and {clock(high)}?", "yard")
    assert {first[-1]["id"], second[0]["id"]} <= {c["id"] for c in across["citations"]}, across
    assert all(c["wall_end"] >= low and c["wall_start"] <= high for c in across["citations"])
    assert f"between {clock(low)} and {clock(high)} UTC" in across["text"], across["text"]
    off = ask(client, f"what happened between {clock(in_gap)} and {clock(in_gap + 1)}?", "yard")
    assert off["citations"] == [] and "no events in memory" in off["text"], off
    assert client.delete("/v1/streams/yard", headers=AUTH).status_code == 204


def test_one_key_cannot_take_every_pull(client, jpegs):
    """server.max_pulls 3, max_pulls_per_key 2 (the module's settings)."""
    cam = MjpegCamera(jpegs).start()

    def pull(stream: str, headers: dict[str, str]) -> Any:
        body = {"id": stream, "source": {"url": cam.url, "fps": 1}}
        return client.post("/v1/streams", json=body, headers=headers)

    try:
        assert pull("q1", AUTH).status_code == 201
        assert pull("q2", AUTH).status_code == 201
        third = pull("q3", AUTH)
        assert third.status_code == 429 and third.json()["error"]["code"] == "quota_exceeded"
        assert "Retry-After" in third.headers
        assert pull("q4", OTHER).status_code == 201  # another key still gets a slot
        full = pull("q5", OTHER)
        assert full.status_code == 429 and full.json()["error"]["code"] == "too_many_pulls"
        assert client.get("/v1/streams/q3", headers=AUTH).status_code == 404  # nothing made
        assert client.delete("/v1/streams/q1", headers=AUTH).status_code == 204
        assert pull("q3", AUTH).status_code == 201  # a freed slot is free again
    finally:
        for stream, headers in (("q2", AUTH), ("q3", AUTH), ("q4", OTHER)):
            client.delete(f"/v1/streams/{stream}", headers=headers)
        cam.stop()
