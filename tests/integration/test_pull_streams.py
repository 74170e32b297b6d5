"""Server-side pull sessions: ``POST /v1/streams`` with a ``source`` makes the server read a
real MJPEG camera (an HTTP server in the test) into the stream's live session; its state shows in
``GET /v1/streams/{id}`` and ``/metrics``; a camera reboot reconnects; credentials never leak."""

from __future__ import annotations

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
    app = create_app(tiny_settings(tmp_path_factory.mktemp("pull-memory")))
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
