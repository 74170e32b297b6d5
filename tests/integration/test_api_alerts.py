"""Alerts through the API in process (TestClient, real engine with tiny models): watch CRUD with
per-key isolation and validation, an ``alert`` message on the stream's WebSocket, the alert log,
server-sent events with replay, and the keyframe an alert links to."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alert_support import LOCAL_RECEIVERS
from api_support import EVENTS, auth, binary_frame, cut_frames, jpeg, receive_until, tiny_settings
from api_support import wait_ready as wait_until_ready
from fastapi.testclient import TestClient

from eventvstream.api import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = tiny_settings(tmp_path_factory.mktemp("alerts-memory"))
    alerts = settings.alerts.model_copy(update=LOCAL_RECEIVERS)
    settings = settings.model_copy(update={"alerts": alerts})
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client)
        yield client


def test_watch_crud_is_owner_scoped_and_validated(client):
    smallest = {"stream": "door", "text": "a bird", "webhook": {"url": "http://127.0.0.1:9/h"}}
    created = client.post("/v1/watches", json=smallest, headers=auth())
    assert created.status_code == 201, created.text
    watch = created.json()
    assert watch["id"].startswith("w_") and watch["condition"] == "semantic"
    assert len(watch["webhook"]["secret"]) >= 32  # shown once
    assert watch["effective"]["threshold"] == 0.35 and watch["effective"]["channels"] == ["webhook"]
    url = f"/v1/watches/{watch['id']}"
    shown = client.get(url, headers=auth()).json()
    assert shown["webhook"] == {"url": "http://127.0.0.1:9/h", "secret_set": True}
    assert client.get(url, headers=auth("key-b")).status_code == 404  # another key's
    assert client.get("/v1/watches", headers=auth("key-b")).json() == {"watches": []}
    patched = client.patch(url, json={"text": "longer than 3 minutes"}, headers=auth())
    assert patched.status_code == 200
    assert patched.json()["condition"] == "duration"
    assert patched.json()["effective"]["min_duration_s"] == 180.0
    assert client.patch(url, json={"threshold": 2}, headers=auth()).status_code == 422
    bad = client.post(
        "/v1/watches", json={"text": "x", "webhook": {"url": "ftp://h/x"}}, headers=auth()
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert client.post("/v1/watches", json={"stream": "door"}, headers=auth()).status_code == 422
    assert client.post("/v1/watches", json={"text": "a"}).status_code == 401
    assert client.delete(url, headers=auth("key-b")).status_code == 404
    assert client.delete(url, headers=auth()).status_code == 204
    assert client.get(url, headers=auth()).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",  # private
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://[::ffff:192.168.1.1]:8080/",  # private, as IPv4-mapped IPv6
        "http://0.0.0.0:9/h",  # unspecified (reaches this host)
        "http://100.64.0.7/h",  # shared address space (CGNAT)
    ],
)
def test_a_webhook_to_a_non_public_address_is_refused(client, url):
    """SSRF: this server allows 127.0.0.1 (its tests' receivers) and nothing else non-public."""
    body = {"stream": "door", "text": "a bird", "webhook": {"url": url}}
    refused = client.post("/v1/watches", json=body, headers=auth())
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "webhook_url_forbidden" and "alerts.webhook_allow" in error["message"]
    ok = {"stream": "door", "text": "a bird", "webhook": {"url": "http://127.0.0.1:9/h"}}
    watch = client.post("/v1/watches", json=ok, headers=auth()).json()
    patched = client.patch(
        f"/v1/watches/{watch['id']}", json={"webhook": {"url": url}}, headers=auth()
    )
    assert patched.status_code == 422 and patched.json()["error"]["code"] == "webhook_url_forbidden"
    shown = client.get(f"/v1/watches/{watch['id']}", headers=auth()).json()
    assert shown["webhook"]["url"] == "http://127.0.0.1:9/h"  # unchanged
    assert client.delete(f"/v1/watches/{watch['id']}", headers=auth()).status_code == 204


def test_alert_on_the_websocket_in_the_log_on_sse_with_a_keyframe(client):
    body = {"stream": "cam", "text": "anything", "min_duration_s": 0.5, "cooldown_s": 0}
    watch = client.post("/v1/watches", json=body, headers=auth()).json()
    assert watch["effective"]["channels"] == []  # no webhook, no broker: live channels only
    with client.websocket_connect("/v1/streams/cam/ws", headers=auth()) as ws:
        ws.receive_json()  # session.ready
        ws.send_json({"type": "session.config", "events": EVENTS, "generate": False})
        receive_until(ws, lambda m: m["type"] == "session.ready")
        for i, frame in enumerate(cut_frames()):
            ws.send_bytes(binary_frame(i / 2.0, jpeg(frame)))
        alert, seen = receive_until(ws, lambda m: m["type"] == "alert")
        boundaries = [m for m in seen if m["type"] == "event.boundary"]
        if not boundaries:  # separate paths (notifier, alert follower): on a loaded machine
            boundaries = [receive_until(ws, lambda m: m["type"] == "event.boundary")[0]]
        boundary = boundaries[0]
        assert alert["event"]["id"] == boundary["event_id"]
        assert alert["why"]["condition"] == "duration" and alert["watch"]["id"] == watch["id"]
    log = client.get("/v1/alerts", headers=auth()).json()["alerts"]
    assert log and log[0]["alert_id"] == alert["alert_id"] and log[0]["deliveries"] == []
    assert client.get("/v1/alerts", headers=auth("key-b")).json() == {"alerts": []}
    keyframe = client.get(alert["event"]["keyframe_url"], headers=auth())
    assert keyframe.status_code == 200 and keyframe.headers["content-type"] == "image/jpeg"
    assert keyframe.content[:2] == b"\xff\xd8"
    assert client.get(alert["event"]["keyframe_url"], headers=auth("key-b")).status_code == 404
    # SSE: a reconnecting client (Last-Event-ID: 0) gets the alerts it missed, with ids
    with client.stream(
        "GET", "/v1/alerts/stream", headers=auth() | {"Last-Event-ID": "0"}
    ) as stream:
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                break
    assert f"id: {log[0]['alert_id']}" in lines and "event: alert" in lines
    data = json.loads(lines[-1][len("data: ") :])
    assert data["alert_id"] == log[0]["alert_id"]
