"""The REST API in process (FastAPI TestClient, real engine with tiny models).

Operations endpoints, auth, per-key isolation, the error envelope (EvsError, validation,
HTTPException, unexpected exceptions), size limits, rate limiting, frames over HTTP, a video
upload job end to end, event listing and search, and questions (JSON and server-sent events).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from api_support import auth, cut_frames, jpeg, tiny_settings, wait_ready
from fastapi.testclient import TestClient

from eventvstream.api import create_app
from eventvstream.api.auth import Authenticator, AuthError, resolve_mode
from eventvstream.api.limits import RateLimiter
from eventvstream.config import ServerSettings
from eventvstream.errors import ConfigError

MAX_UPLOAD = 2 << 20
MAX_FRAME = 64 << 10


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("rest-memory")
    settings = tiny_settings(data_dir, max_upload_bytes=MAX_UPLOAD, max_frame_bytes=MAX_FRAME)
    return create_app(settings)


@pytest.fixture(scope="module")
def started(app: Any) -> Any:
    with TestClient(app) as client:
        first = client.get("/readyz")  # models load in the background: not ready yet
        wait_ready(client)
        yield client, first


@pytest.fixture
def client(started: Any) -> Any:
    return started[0]


@pytest.fixture(scope="module")
def small_video(video_dir: Path) -> Path:
    pytest.importorskip("skimage")
    from eventvstream import testdata

    spec = testdata.cuts_clip(11, n_shots=3, shot_s=(2.5, 3.0))
    path = video_dir / "api_upload.mp4"
    testdata.render_clip(spec, path, 128, 72, 5.0)
    return path


def error_of(response: Any) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


def test_operations_endpoints(started: Any) -> None:
    client, first = started
    assert first.status_code == 503 and error_of(first)["code"] == "not_ready"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/streams", "/v1/query", "/v1/jobs/{job_id}", "/readyz"} <= set(paths)
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE evs_frames_received_total counter" in metrics.text
    assert 'evs_queue_depth{queue="frames"}' in metrics.text
    assert "evs_caption_latency_seconds_count" in metrics.text


def test_auth_and_error_envelope(client: Any) -> None:
    missing = client.get("/v1/streams")
    assert missing.status_code == 401 and error_of(missing)["code"] == "unauthorized"
    wrong = client.get("/v1/streams", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and "nope" not in wrong.text
    unknown = client.get("/v1/nothing-here", headers=auth())
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"
    invalid = client.post("/v1/query", json={}, headers=auth())
    assert invalid.status_code == 422 and error_of(invalid)["code"] == "invalid_request"
    bad_id = client.post("/v1/streams", json={"id": "no spaces"}, headers=auth())
    assert bad_id.status_code == 422
    wrong_method = client.put("/v1/streams", headers=auth())
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"]


def test_unexpected_errors_are_a_bare_500(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(app, raise_server_exceptions=False)  # shares the running engine

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.engine.streams, "describe", boom)
    response = client.get("/v1/streams", headers=auth())
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal_error", "message": "internal server error"}


def test_streams_are_per_key(client: Any) -> None:
    created = client.post("/v1/streams", json={"id": "lobby"}, headers=auth())
    assert created.status_code == 201 and created.json()["id"] == "lobby"
    assert client.post("/v1/streams", json={"id": "lobby"}, headers=auth()).status_code == 200
    anonymous = client.post("/v1/streams", headers=auth())
    assert anonymous.status_code == 201 and len(anonymous.json()["id"]) == 12
    mine = {s["id"] for s in client.get("/v1/streams", headers=auth()).json()["streams"]}
    assert {"lobby", anonymous.json()["id"]} <= mine
    theirs = client.get("/v1/streams", headers=auth("key-b")).json()["streams"]
    assert "lobby" not in {s["id"] for s in theirs}
    for method in ("get", "delete"):
        hidden = getattr(client, method)("/v1/streams/lobby", headers=auth("key-b"))
        assert hidden.status_code == 404 and error_of(hidden)["code"] == "not_found"
    assert client.delete("/v1/streams/lobby", headers=auth()).status_code == 204
    assert client.get("/v1/streams/lobby", headers=auth()).status_code == 404


def test_frames_over_http(client: Any) -> None:
    client.post("/v1/streams", json={"id": "http-cam"}, headers=auth())
    headers = auth() | {"Content-Type": "image/jpeg"}
    frames = cut_frames()[:4]
    for i, frame in enumerate(frames):
        ok = client.post(
            f"/v1/streams/http-cam/frames?t={i / 2}", content=jpeg(frame), headers=headers
        )
        assert ok.status_code == 202 and ok.json() == {"queued": True, "frames_dropped": 0}
    skipped = client.post(
        "/v1/streams/http-cam/frames?t=1.6", content=jpeg(frames[0]), headers=headers
    )
    assert skipped.json()["queued"] is False  # same 0.5 s tick as t=1.5
    corrupt = client.post(
        "/v1/streams/http-cam/frames?t=5", content=b"\xff\xd8\xff\x00", headers=headers
    )
    assert corrupt.status_code == 400 and error_of(corrupt)["code"] == "bad_frame"
    big = client.post(
        "/v1/streams/http-cam/frames?t=6", content=bytes(MAX_FRAME + 1), headers=headers
    )
    assert big.status_code == 413 and error_of(big)["code"] == "frame_too_large"
    text = client.post(
        "/v1/streams/http-cam/frames?t=7",
        content=b"x",
        headers=auth() | {"Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    missing = client.post("/v1/streams/nope/frames?t=0", content=jpeg(frames[0]), headers=headers)
    assert missing.status_code == 404
    no_time = client.post("/v1/streams/http-cam/frames", content=jpeg(frames[0]), headers=headers)
    assert no_time.status_code == 422


def wait_job(client: Any, job_id: str, key: str = "key-a") -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_upload_job_search_and_questions(client: Any, small_video: Path) -> None:
    client.post("/v1/streams", json={"id": "uploads"}, headers=auth())
    data = small_video.read_bytes()
    headers = auth() | {"Content-Type": "video/mp4"}
    accepted = client.post("/v1/streams/uploads/uploads", content=data, headers=headers)
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=auth("key-b")).status_code == 404
    job = wait_job(client, job_id)
    assert job["state"] == "done" and job["progress"] == 1.0 and job["events"] >= 2, job
    again = wait_job(
        client,
        client.post("/v1/streams/uploads/uploads", content=data, headers=headers).json()["job_id"],
    )
    assert again["state"] == "done" and again["events"] == 0 and again["note"]

    files = {"file": ("clip.mp4", data, "video/mp4")}
    client.post("/v1/streams", json={"id": "multipart"}, headers=auth())
    form = client.post("/v1/streams/multipart/uploads", files=files, headers=auth())
    assert form.status_code == 202 and wait_job(client, form.json()["job_id"])["events"] >= 2

    events = client.get("/v1/streams/uploads/events", headers=auth()).json()["events"]
    assert len(events) == job["events"]
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)
    window = client.get("/v1/streams/uploads/events?t0=0&t1=1&limit=1", headers=auth()).json()
    assert len(window["events"]) == 1 and window["events"][0]["start"] <= 1
    found = client.get("/v1/streams/uploads/events?q=a video event", headers=auth()).json()
    assert found["events"] and all("score" in e for e in found["events"])

    question = {"text": "what is happening now?", "stream": "uploads"}
    answer = client.post("/v1/query", json=question, headers=auth())
    assert answer.status_code == 200
    body = answer.json()
    assert body["grounded"] is True and body["citations"]
    assert {c["id"] for c in body["citations"]} <= {e["id"] for e in events}

    with client.stream(
        "POST", "/v1/query", json=question | {"stream_response": True}, headers=auth()
    ) as sse:
        assert sse.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in sse.iter_lines() if line]
    kinds = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    assert kinds[-1] == "done" and "delta" in kinds
    done = json.loads(lines[-1].split(": ", 1)[1])
    assert done["citations"] and done["intent"] == "now"
    other = client.post("/v1/query", json=question, headers=auth("key-b"))
    assert other.status_code == 404  # key-b has no stream "uploads"


def test_upload_limits(client: Any) -> None:
    client.post("/v1/streams", json={"id": "big-uploads"}, headers=auth())
    headers = auth() | {"Content-Type": "video/mp4"}
    too_big = client.post(
        "/v1/streams/big-uploads/uploads", content=bytes(MAX_UPLOAD + 1), headers=headers
    )
    assert too_big.status_code == 413 and error_of(too_big)["code"] == "upload_too_large"

    def chunks() -> Any:  # no Content-Length: the limit is enforced while streaming
        for _ in range(3):
            yield bytes(MAX_UPLOAD // 2 + 1)

    streamed = client.post("/v1/streams/big-uploads/uploads", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    wrong_type = client.post(
        "/v1/streams/big-uploads/uploads",
        content=b"x",
        headers=auth() | {"Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    broken = client.post("/v1/streams/big-uploads/uploads", content=b"not a video", headers=headers)
    job = wait_job(client, broken.json()["job_id"])
    assert job["state"] == "failed" and job["error"]["code"]


def test_rate_limit_answers_429_with_retry_after(app: Any, client: Any) -> None:
    saved = app.state.limiter
    app.state.limiter = RateLimiter(rate_per_s=0.5, burst=2)
    try:
        codes = [client.get("/v1/streams", headers=auth()).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.get("/v1/streams", headers=auth())
        assert error_of(limited)["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        assert client.get("/v1/streams", headers=auth("key-b")).status_code == 200  # per key
        assert client.get("/healthz").status_code == 200  # operations are not limited
    finally:
        app.state.limiter = saved


def test_auth_modes_and_key_hashes() -> None:
    assert resolve_mode(ServerSettings(), "127.0.0.1") == "off"
    assert resolve_mode(ServerSettings(), "::1") == "off"
    with pytest.raises(ConfigError, match="refusing"):
        resolve_mode(ServerSettings(), "0.0.0.0")
    assert resolve_mode(ServerSettings(auth="off"), "0.0.0.0") == "off"
    with pytest.raises(ConfigError, match="api_keys is empty"):
        resolve_mode(ServerSettings(auth="required"), "127.0.0.1")
    digest = hashlib.sha256(b"hashed-key").hexdigest()
    settings = ServerSettings(api_keys=["raw-key", f"sha256:{digest}"])
    assert resolve_mode(settings, "0.0.0.0") == "required"
    checker = Authenticator(settings, "required")
    raw, hashed = checker.check("raw-key"), checker.check("hashed-key")
    assert raw.owner != hashed.owner and hashed.owner == "k_" + digest[:12]
    for key in (None, "", "raw-key ", "sha256:" + digest):
        with pytest.raises(AuthError):
            checker.check(key)


def test_a_fatal_start_up_error_keeps_readiness_503(app: Any, client: Any) -> None:
    """A second server on the same data directory cannot take the memory bank's lock."""
    settings = app.state.settings
    second = create_app(
        settings.model_copy(
            update={"language": settings.language.model_copy(update={"backend": "none"})}
        )
    )
    with TestClient(second) as other:
        engine = second.state.engine
        engine.wait_ready(60)
        ready = other.get("/readyz")
        assert ready.status_code == 503 and error_of(ready)["code"] == "engine_failed"
        assert (
            "memory_locked" in error_of(ready)["message"] or "in use" in error_of(ready)["message"]
        )
        refused = other.get("/v1/streams", headers=auth())
        assert refused.status_code == 503 and error_of(refused)["code"] == "not_ready"
        assert other.get("/healthz").status_code == 200
