"""A hostile-input pass over a real `evs serve` with two API keys: malformed, oversized, out of
order and cross-tenant requests over REST and WebSocket.

Every probe asserts the same contract: the documented error envelope
(``{"error": {"code", "message"}}``) with the expected stable code, never a 500, a traceback or
a hang; the server keeps serving; nothing stored is lost (the last test re-reads a stream
stored before all the probes). One server for the whole module keeps it fast.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_support import (
    ALPHA,
    BETA,
    KEYED_ENV,
    bearer,
    event_count,
    flood,
    make_video,
    raw_request,
    wait_job,
    ws_refusal,
    ws_until,
)

pytestmark = pytest.mark.e2e
websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

MAX_FRAME = 256 << 10
MAX_MESSAGE = 512 << 10
MAX_UPLOAD = 1 << 20
ENV = KEYED_ENV | {
    "EVS_SERVER__MAX_FRAME_BYTES": str(MAX_FRAME),
    "EVS_SERVER__MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
    "EVS_SERVER__MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    "EVS_SERVER__MAX_UPLOADS_PER_KEY": "8",
    "EVS_SERVER__SEND_QUEUE_MESSAGES": "256",  # a non-reading client is closed sooner
    "EVS_SERVER__SEND_QUEUE_BYTES": str(256 << 10),
}
JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    return make_video(tmp_path_factory.mktemp("video") / "a.mp4")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_launcher: Any) -> Iterator[Any]:
    proc = server_launcher(tmp_path_factory.mktemp("hostile"), env=ENV)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def stored(server: Any, video: Path) -> dict[str, Any]:
    """Alpha's stream `kept` with a finished upload and a watch: what no probe may lose."""
    for stream in ("kept", "f1", "up"):
        create(server.url, ALPHA, stream)
    response = upload(server.url, ALPHA, "kept", video.read_bytes())
    assert response.status_code == 202, response.text
    job = wait_job(server.url, ALPHA, response.json()["job_id"])
    assert job["state"] == "done" and job["events"] > 0, job
    watch = httpx.post(
        f"{server.url}/v1/watches", json={"text": "a dog", "stream": "kept"}, headers=bearer(ALPHA)
    )
    assert watch.status_code == 201, watch.text
    events = httpx.get(f"{server.url}/v1/streams/kept/events", headers=bearer(ALPHA)).json()
    return {
        "job": response.json()["job_id"],
        "ids": event_ids(server.url, ALPHA, "kept"),
        "events": event_count(server.url, ALPHA, "kept"),
        "event_id": events["events"][0]["id"],
        "watch": watch.json()["id"],
    }


def event_ids(url: str, key: str, stream: str) -> set[int]:
    response = httpx.get(f"{url}/v1/streams/{stream}/events?limit=1000", headers=bearer(key))
    assert response.status_code == 200, response.text
    return {e["id"] for e in response.json()["events"]}


def create(url: str, key: str, stream: str) -> None:
    response = httpx.post(f"{url}/v1/streams", json={"id": stream}, headers=bearer(key))
    assert response.status_code in (200, 201), response.text


def upload(url: str, key: str, stream: str, data: bytes, mime: str = "video/mp4") -> httpx.Response:
    headers = bearer(key) | {"Content-Type": mime}
    return httpx.post(f"{url}/v1/streams/{stream}/uploads", content=data, headers=headers)


def enveloped(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    """The response is the error envelope with ``status`` and ``code``, and leaks nothing."""
    body = response.text
    assert "Traceback" not in body and 'File "' not in body, body[:2000]
    assert response.status_code == status, (response.status_code, body[:500])
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and 0 < len(error["message"]) <= 2000, error
    return error


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


# --- REST --------------------------------------------------------------------------------------

BIG = "9" * 400
# (id, method, path, body bytes or JSON-able, extra headers, status, code)
REST_PROBES: list[tuple[str, str, str, Any, dict[str, str], int, str]] = [
    ("json-truncated", "POST", "/v1/streams", b'{"id": ', JSON, 422, "invalid_request"),
    ("json-garbage", "POST", "/v1/query", b"\x00\x01not json", JSON, 422, "invalid_request"),
    ("json-bad-utf8", "POST", "/v1/query", b'{"text": "\xff\xfe"}', JSON, 400, "bad_request"),
    ("json-array", "POST", "/v1/query", b"[1, 2]", JSON, 422, "invalid_request"),
    ("json-null", "POST", "/v1/query", b"null", JSON, 422, "invalid_request"),
    ("json-empty", "POST", "/v1/query", b"", JSON, 422, "invalid_request"),
    ("json-nan", "POST", "/v1/query", b'{"text": "hi", "t0": NaN}', JSON, 422, "invalid_request"),
    ("json-inf", "POST", "/v1/query", b'{"text": "hi", "t1": Infinity}', JSON, 422,
     "invalid_request"),
    ("json-1e400", "POST", "/v1/query", b'{"text": "hi", "t0": 1e400}', JSON, 422,
     "invalid_request"),
    ("json-bigint", "POST", "/v1/query", f'{{"text": "hi", "t0": {BIG}}}'.encode(), JSON, 422,
     "invalid_request"),
    ("json-wrong-type", "POST", "/v1/query", {"text": ["a"], "stream": 5}, {}, 422,
     "invalid_request"),
    ("json-unknown-field", "POST", "/v1/streams", {"id": "u1", "admin": True}, {}, 422,
     "invalid_request"),
    ("json-text-plain", "POST", "/v1/query", b'{"text": "hi"}', TEXT,
     415, "unsupported_media_type"),
    ("json-form", "POST", "/v1/streams", b"id=x", FORM,
     415, "unsupported_media_type"),
    ("question-1mb", "POST", "/v1/query", {"text": "x" * (1 << 20)}, {}, 413, "payload_too_large"),
    ("question-too-long", "POST", "/v1/query", {"text": "x" * 5000}, {}, 422, "invalid_request"),
    ("question-empty", "POST", "/v1/query", {"text": ""}, {}, 422, "invalid_request"),
    ("stream-id-nul", "POST", "/v1/streams", {"id": "a\u0000b"}, {}, 422, "invalid_request"),
    ("stream-id-unicode", "POST", "/v1/streams", {"id": "caméra🐕"}, {}, 422, "invalid_request"),
    ("stream-id-long", "POST", "/v1/streams", {"id": "a" * 65}, {}, 422, "invalid_request"),
    ("stream-id-dots", "POST", "/v1/streams", {"id": ".."}, {}, 422, "invalid_request"),
    ("stream-id-dot", "POST", "/v1/streams", {"id": "."}, {}, 422, "invalid_request"),
    ("watch-stream-dots", "POST", "/v1/watches", {"text": "x", "stream": ".."}, {}, 422,
     "invalid_request"),
    ("query-stream-nul", "POST", "/v1/query", {"text": "hi", "stream": "x\u0000"}, {}, 422,
     "invalid_request"),
    ("path-unicode", "GET", "/v1/streams/cam%C3%A9ra", None, {}, 422, "invalid_request"),
    ("path-nul", "GET", "/v1/streams/a%00b", None, {}, 422, "invalid_request"),
    # %2F is a "/" to the router (no such route); clients drop "." and ".." segments themselves
    ("path-traversal", "GET", "/v1/streams/..%2F..%2Fetc%2Fpasswd", None, {}, 404, "not_found"),
    ("path-dotdot", "GET", "/v1/streams/..", None, {}, 404, "not_found"),
    ("path-dot", "DELETE", "/v1/streams/.", None, {}, 405, "method_not_allowed"),
    ("path-dots-escaped", "GET", "/v1/streams/%2E%2E", None, {}, 422, "invalid_request"),
    ("path-three-dots", "GET", "/v1/streams/...", None, {}, 422, "invalid_request"),
    ("job-traversal", "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", None, {}, 404, "not_found"),
    ("job-nul", "GET", "/v1/jobs/%00", None, {}, 404, "not_found"),
    ("job-long", "GET", "/v1/jobs/" + "j" * 4000, None, {}, 404, "not_found"),
    ("watch-traversal", "GET", "/v1/watches/..%2Fetc", None, {}, 404, "not_found"),
    ("watch-nul", "DELETE", "/v1/watches/%00", None, {}, 404, "not_found"),
    ("keyframe-traversal", "GET", "/v1/streams/kept/events/..%2F1/keyframe", None, {}, 404,
     "not_found"),
    ("keyframe-negative", "GET", "/v1/streams/kept/events/-1/keyframe", None, {}, 422,
     "invalid_request"),
    ("keyframe-missing", "GET", "/v1/streams/kept/events/999999/keyframe", None, {}, 404,
     "not_found"),
    ("keyframe-huge", "GET", f"/v1/streams/kept/events/{BIG}/keyframe", None, {}, 422,
     "invalid_request"),
    ("events-limit-negative", "GET", "/v1/streams/kept/events?limit=-1", None, {}, 422,
     "invalid_request"),
    ("events-limit-zero", "GET", "/v1/streams/kept/events?limit=0", None, {}, 422,
     "invalid_request"),
    ("events-limit-nan", "GET", "/v1/streams/kept/events?limit=nan", None, {}, 422,
     "invalid_request"),
    ("events-limit-huge", "GET", f"/v1/streams/kept/events?limit={BIG}", None, {}, 422,
     "invalid_request"),
    ("events-t0-nan", "GET", "/v1/streams/kept/events?t0=nan", None, {}, 422, "invalid_request"),
    ("events-t1-inf", "GET", "/v1/streams/kept/events?t1=inf", None, {}, 422, "invalid_request"),
    ("events-t0-neg-inf", "GET", "/v1/streams/kept/events?t0=-Infinity", None, {}, 422,
     "invalid_request"),
    ("events-t0-huge", "GET", "/v1/streams/kept/events?t0=1e308", None, {}, 422,
     "invalid_request"),
    ("events-q-long", "GET", "/v1/streams/kept/events?q=" + "q" * 3000, None, {}, 422,
     "invalid_request"),
    ("alerts-after-negative", "GET", "/v1/alerts?after=-1", None, {}, 422, "invalid_request"),
    ("alerts-after-huge", "GET", f"/v1/alerts?after={BIG}", None, {}, 422, "invalid_request"),
    ("alerts-limit-nan", "GET", "/v1/alerts?limit=NaN", None, {}, 422, "invalid_request"),
    ("alerts-stream-traversal", "GET", "/v1/alerts?stream=../x", None, {}, 422,
     "invalid_request"),
    ("sse-after-negative", "GET", "/v1/alerts/stream?after=-5", None, {}, 422,
     "invalid_request"),
    ("sse-events-not-bool", "GET", "/v1/alerts/stream?events=maybe", None, {}, 422,
     "invalid_request"),
    ("frame-t-nan", "POST", "/v1/streams/kept2/frames?t=nan", "JPEG", {}, 422,
     "invalid_request"),
    ("frame-t-missing", "POST", "/v1/streams/kept2/frames", "JPEG", {}, 422, "invalid_request"),
    ("frame-not-image", "POST", "/v1/streams/f1/frames?t=0", b"hello world",
     {"Content-Type": "image/jpeg"}, 400, "bad_frame"),
    ("frame-truncated-jpeg", "POST", "/v1/streams/f1/frames?t=1", "JPEG-HALF",
     {"Content-Type": "image/jpeg"}, 400, "bad_frame"),
    ("frame-empty", "POST", "/v1/streams/f1/frames?t=2", b"", {"Content-Type": "image/jpeg"},
     400, "bad_frame"),
    ("frame-text-plain", "POST", "/v1/streams/f1/frames?t=3", "JPEG", TEXT,
     415, "unsupported_media_type"),
    ("frame-too-large", "POST", "/v1/streams/f1/frames?t=4", b"\xff" * (MAX_FRAME + 1),
     {"Content-Type": "image/jpeg"}, 413, "frame_too_large"),
    ("unknown-route", "GET", "/v1/nothing-here", None, {}, 404, "not_found"),
    ("wrong-method", "PUT", "/v1/streams", None, {}, 405, "method_not_allowed"),
    ("pull-file", "POST", "/v1/streams", {"id": "p1", "source": {"url": "file:///etc/passwd"}},
     {}, 400, "bad_source"),
    ("pull-gopher", "POST", "/v1/streams", {"id": "p2", "source": {"url": "gopher://h/x"}}, {},
     400, "bad_source"),
    ("pull-javascript", "POST", "/v1/streams",
     {"id": "p3", "source": {"url": "javascript:alert(1)"}}, {}, 400, "bad_source"),
    ("pull-empty", "POST", "/v1/streams", {"id": "p4", "source": {"url": ""}}, {}, 422,
     "invalid_request"),
    ("pull-fps-nan", "POST", "/v1/streams",
     b'{"id": "p5", "source": {"url": "rtsp://cam/x", "fps": NaN}}', JSON, 422,
     "invalid_request"),
    ("pull-fps-negative", "POST", "/v1/streams",
     {"id": "p6", "source": {"url": "rtsp://cam/x", "fps": -2}}, {}, 422, "invalid_request"),
    ("webhook-file", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "file:///etc/passwd"}}, {}, 422, "invalid_request"),
    ("webhook-gopher", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "gopher://127.0.0.1:6379/_FLUSHALL"}}, {}, 422,
     "invalid_request"),
    ("webhook-loopback", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://127.0.0.1:22/"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-localhost", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://localhost:6379/"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-ipv6-loopback", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://[::1]:8080/"}}, {}, 422, "webhook_url_forbidden"),
    ("webhook-mapped-v4", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://[::ffff:127.0.0.1]/"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-metadata", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://169.254.169.254/latest/meta-data/"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-zero", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://0.0.0.0:8000/"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-decimal-ip", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://2130706433/"}}, {}, 422, "webhook_url_forbidden"),
    ("webhook-private", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "https://10.0.0.1/hook"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-userinfo", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://example.com@127.0.0.1/"}}, {}, 422,
     "webhook_url_forbidden"),
    ("webhook-no-host", "POST", "/v1/watches", {"text": "x", "webhook": {"url": "http://"}},
     {}, 422, "invalid_request"),
    ("webhook-bad-port", "POST", "/v1/watches",
     {"text": "x", "webhook": {"url": "http://example.com:99999/"}}, {}, 422, "invalid_request"),
    ("webhook-patch-loopback", "PATCH", "/v1/watches/WATCH",
     {"webhook": {"url": "http://127.0.0.1:9/"}}, {}, 422, "webhook_url_forbidden"),
    ("watch-threshold-nan", "POST", "/v1/watches", b'{"text": "x", "threshold": NaN}', JSON,
     422, "invalid_request"),
    ("watch-cooldown-inf", "POST", "/v1/watches", b'{"text": "x", "cooldown_s": Infinity}',
     JSON, 422, "invalid_request"),
    ("watch-min-duration-inf", "POST", "/v1/watches",
     b'{"text": "x", "min_duration_s": Infinity}', JSON, 422, "invalid_request"),
    ("upload-text-plain", "POST", "/v1/streams/up/uploads", b"hello", TEXT,
     415, "unsupported_media_type"),
    ("upload-zero-bytes", "POST", "/v1/streams/up/uploads", b"", {"Content-Type": "video/mp4"},
     400, "bad_request"),
    ("upload-too-large", "POST", "/v1/streams/up/uploads", b"\x00" * (MAX_UPLOAD + 1),
     {"Content-Type": "video/mp4"}, 413, "upload_too_large"),
    ("upload-bad-multipart", "POST", "/v1/streams/up/uploads", b"--x\r\nnonsense",
     {"Content-Type": "multipart/form-data; boundary=x"}, 400, "bad_request"),
    ("upload-multipart-no-boundary", "POST", "/v1/streams/up/uploads", b"abc",
     {"Content-Type": "multipart/form-data"}, 400, "bad_request"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [pytest.param(*probe[1:], id=probe[0]) for probe in REST_PROBES],
)
def test_rest_probe(server, stored, method, path, body, headers, status, code) -> None:
    path = path.replace("WATCH", stored["watch"])
    kwargs: dict[str, Any] = {"headers": bearer(ALPHA) | headers, "timeout": 30}
    if body == "JPEG":
        kwargs["content"] = jpeg_bytes()
        kwargs["headers"].setdefault("Content-Type", "image/jpeg")
    elif body == "JPEG-HALF":
        kwargs["content"] = jpeg_bytes((320, 240))[:300]
    elif isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    enveloped(httpx.request(method, server.url + path, **kwargs), status, code)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("X-Junk: " + "a" * 200_000, id="one-200kb-header"),
        pytest.param("\r\n".join(f"X-H{i}: v" for i in range(5000)), id="5000-headers"),
        pytest.param("Authorization: Bearer \xff\xfe", id="latin1-key"),
    ],
)  # fmt: skip
def test_hostile_headers(server, header: str) -> None:
    """Headers beyond the HTTP parser's limits are refused at the protocol level (no app code
    runs, so no envelope there: a 4xx or a closed connection), never a 500 or a hang."""
    head = (
        f"GET /v1/streams HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n{header}\r\n\r\n"
    )
    answer = raw_request(server.port, head, timeout=15)
    status_line = answer.split(b"\r\n", 1)[0]
    assert answer == b"" or status_line.split()[1].startswith(b"4"), answer[:300]
    assert b"Traceback" not in answer


@pytest.mark.parametrize("last_id", ["\xb2", "-1", "abc", "9" * 400, " 7 ", "1e3"])
def test_sse_last_event_id_garbage_is_ignored(server, last_id: str) -> None:
    """A ``Last-Event-ID`` that is not a plain number replays nothing and still connects ("²"
    passed ``str.isdigit`` and made ``int()`` raise: a 500)."""
    head = (
        f"GET /v1/alerts/stream HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Authorization: Bearer {ALPHA}\r\nLast-Event-ID: {last_id}\r\n\r\n"
    )
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        answer = b""
        while b": connected" not in answer and b"\r\n\r\n{" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_truncated_body_does_not_hang_the_server(server) -> None:
    """A body that stops short of its Content-Length (the client hangs up) costs one line."""
    head = (
        f"POST /v1/query HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: Bearer {ALPHA}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head.encode() + b'{"text": "hi"')
    assert httpx.get(f"{server.url}/v1/streams", headers=bearer(ALPHA)).status_code == 200


# --- uploads that are not videos ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["text", "jpeg", "truncated-mp4", "mp4-header-only", "random-bytes"]
)
def test_upload_that_is_not_a_playable_video_fails_clearly(server, video, kind) -> None:
    data = {
        "text": b"this is not a video\n" * 50,
        "jpeg": jpeg_bytes(),
        "truncated-mp4": video.read_bytes()[: video.stat().st_size // 3],
        "mp4-header-only": video.read_bytes()[:64],
        "random-bytes": bytes(range(256)) * 40,
    }[kind]
    create(server.url, ALPHA, "junk")
    response = upload(server.url, ALPHA, "junk", data)
    if response.status_code != 202:  # refused up front is fine, if enveloped
        enveloped(response, 400, "media_error")
        return
    job = wait_job(server.url, ALPHA, response.json()["job_id"])
    if job["state"] == "done":  # decoded up to where it stops; a still image is a 1-frame video
        assert kind in ("truncated-mp4", "jpeg"), job
        return
    error = job["error"]
    assert error["code"] in ("unreadable_video", "corrupt_video", "decoder_crashed"), job
    assert "Traceback" not in error["message"] and "/tmp" not in error["message"], job


def test_a_huge_upload_file_name_is_not_echoed_whole(server) -> None:
    """An upload named (``X-Filename``) with 20,000 characters and a tab: the failed job's
    error names the file, clipped, on one line. (A multipart part header that long is refused
    by the multipart parser: 400 ``bad_request``.)"""
    create(server.url, ALPHA, "junk")
    name = "../../" + "n" * 20_000 + "\t.mp4"
    headers = bearer(ALPHA) | {"Content-Type": "video/mp4", "X-Filename": name}
    data = b"not a video at all" * 10
    response = httpx.post(f"{server.url}/v1/streams/junk/uploads", content=data, headers=headers)
    assert response.status_code == 202, response.text
    job = wait_job(server.url, ALPHA, response.json()["job_id"])
    assert job["state"] == "failed", job
    message = job["error"]["message"]
    assert len(message) < 1000 and "\t" not in message, message[:300]
    multipart = httpx.post(
        f"{server.url}/v1/streams/junk/uploads",
        files={"file": (name, data, "video/mp4")},
        headers=bearer(ALPHA),
    )
    enveloped(multipart, 400, "bad_request")


# --- other tenants -----------------------------------------------------------------------------


def test_another_tenants_ids_are_not_found_and_untouched(server, stored) -> None:
    b = bearer(BETA)
    url = server.url
    for method, path in [
        ("GET", "/v1/streams/kept"),
        ("GET", "/v1/streams/kept/events"),
        ("DELETE", "/v1/streams/kept"),
        ("GET", f"/v1/jobs/{stored['job']}"),
        ("GET", f"/v1/watches/{stored['watch']}"),
        ("DELETE", f"/v1/watches/{stored['watch']}"),
        ("GET", f"/v1/streams/kept/events/{stored['event_id']}/keyframe"),
    ]:
        enveloped(httpx.request(method, url + path, headers=b), 404, "not_found")
    patched = httpx.patch(f"{url}/v1/watches/{stored['watch']}", json={"text": "y"}, headers=b)
    enveloped(patched, 404, "not_found")
    frames = httpx.post(
        f"{url}/v1/streams/kept/uploads",
        content=b"x",
        headers=b | {"Content-Type": "video/mp4"},
    )
    assert frames.status_code != 500 and "kept" not in str(
        httpx.get(f"{url}/v1/streams", headers=b).json().get("streams_of_alpha", "")
    )
    answer = httpx.post(f"{url}/v1/query", json={"text": "what?", "stream": "kept"}, headers=b)
    if answer.status_code == 200:
        assert answer.json()["citations"] == [], answer.text
    else:
        enveloped(answer, 404, "not_found")
    alerts = httpx.get(f"{url}/v1/alerts", params={"stream": "kept"}, headers=b)
    assert alerts.status_code == 200 and alerts.json()["alerts"] == []
    assert event_ids(url, ALPHA, "kept") >= stored["ids"]
    watch = httpx.get(f"{url}/v1/watches/{stored['watch']}", headers=bearer(ALPHA))
    assert watch.status_code == 200 and watch.json()["text"] == "a dog", watch.text


def test_no_key_and_a_wrong_key(server) -> None:
    enveloped(httpx.get(f"{server.url}/v1/streams"), 401, "unauthorized")
    enveloped(httpx.get(f"{server.url}/v1/streams", headers=bearer("nope")), 401, "unauthorized")
    enveloped(
        httpx.get(f"{server.url}/v1/streams", headers={"Authorization": "Basic a2V5"}),
        401,
        "unauthorized",
    )


# --- WebSocket ---------------------------------------------------------------------------------


def ws_url(server: Any, stream: str) -> str:
    return server.url.replace("http", "ws") + f"/v1/streams/{stream}/ws"


GOOD_JPEG_T = 100.0
WS_PROBES: list[tuple[str, Any, str]] = [
    ("text-not-json", "hello there", "bad_message"),
    ("text-json-array", "[1, 2, 3]", "bad_message"),
    ("text-json-string", '"frame"', "bad_message"),
    ("text-json-null", "null", "bad_message"),
    ("text-json-number", "1e400", "bad_message"),
    ("text-no-type", '{"t": 1}', "bad_message"),
    ("text-type-not-string", '{"type": 5}', "bad_message"),
    ("text-type-object", '{"type": {"a": 1}}', "bad_message"),
    ("text-unknown-type", '{"type": "rm -rf"}', "bad_message"),
    ("text-nul-type", '{"type": "ping\\u0000"}', "bad_message"),
    ("text-lone-surrogate", '{"type": "query", "text": "\\ud800"}', "bad_message"),
    ("query-no-text", '{"type": "query", "id": "q"}', "bad_message"),
    ("query-text-long", json.dumps({"type": "query", "id": "q", "text": "x" * 300_000}),
     "bad_message"),
    ("query-t0-nan", '{"type": "query", "id": "q", "text": "hi", "t0": NaN}', "bad_message"),
    ("query-id-object", '{"type": "query", "id": {"x": 1}, "text": "hi"}', "bad_message"),
    ("config-fps-nan", '{"type": "session.config", "fps": NaN}', "bad_config"),
    ("config-fps-negative", '{"type": "session.config", "fps": -1}', "bad_config"),
    ("config-fps-huge", '{"type": "session.config", "fps": 1e308}', "bad_config"),
    ("config-unknown-field", '{"type": "session.config", "sudo": true}', "bad_config"),
    ("config-events-not-object", '{"type": "session.config", "events": "all"}', "bad_config"),
    ("config-events-unknown-key", '{"type": "session.config", "events": {"x": 1}}',
     "bad_config"),
    ("frame-json-bad-base64", '{"type": "frame", "t": 101, "data": "***"}', "bad_frame"),
    ("frame-json-data-number", '{"type": "frame", "t": 101, "data": 5}', "bad_message"),
    ("frame-json-no-t", '{"type": "frame", "data": "AAAA"}', "bad_message"),
    ("frame-json-t-string", '{"type": "frame", "t": "soon", "data": "AAAA"}', "bad_message"),
    ("frame-json-not-image", json.dumps({"type": "frame", "t": 101, "data": "aGVsbG8="}),
     "bad_frame"),
    ("binary-short", b"\x00\x01\x02", "bad_frame"),
    ("binary-ts-only", struct.pack(">d", 101.0), "bad_frame"),
    ("binary-ts-nan", struct.pack(">d", float("nan")) + b"JPEG", "bad_frame"),
    ("binary-ts-inf", struct.pack(">d", float("inf")) + b"JPEG", "bad_frame"),
    ("binary-not-image", struct.pack(">d", 101.0) + b"GIF89a" + bytes(100), "bad_frame"),
    ("binary-truncated-jpeg", "TRUNCATED", "bad_frame"),
    ("binary-random", struct.pack(">d", 101.0) + bytes(range(256)) * 8, "bad_frame"),
    ("frame-json-too-large",
     json.dumps({"type": "frame", "t": 101, "data": "AAAA" * (MAX_FRAME // 3 + 100)}),
     "frame_too_large"),
    ("frame-json-mime-odd", json.dumps({"type": "frame", "t": 101, "data": "aGk=",
                                        "mime": "text/html"}), "bad_frame"),
    ("binary-too-large", struct.pack(">d", 101.0) + b"\xff\xd8" + bytes(MAX_FRAME + 10),
     "frame_too_large"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "code"), [pytest.param(*p[1:], id=p[0]) for p in WS_PROBES])
def test_websocket_probe(server, message, code) -> None:
    """One bad message gets one ``error`` with its code; the session goes on (a ping is
    answered and a good frame is still taken)."""
    if message == "TRUNCATED":
        message = struct.pack(">d", 101.0) + jpeg_bytes((320, 240))[:400]

    async def run() -> dict[str, Any]:
        async with connect(ws_url(server, "wsprobe"), additional_headers=bearer(BETA)) as ws:
            await ws_until(ws, lambda m: m["type"] == "session.ready")
            # a good frame first: messages that only make sense after one (resume) are tested too
            await ws.send(struct.pack(">d", GOOD_JPEG_T) + jpeg_bytes())
            await ws.send(message)
            error = await ws_until(ws, lambda m: m["type"] == "error")
            await ws.send(json.dumps({"type": "ping"}))
            await ws_until(ws, lambda m: m["type"] == "pong")
            return error

    error = asyncio.run(asyncio.wait_for(run(), 30))
    assert error["code"] == code, error
    assert "Traceback" not in error["message"] and len(error["message"]) <= 2000, error


def test_websocket_message_over_the_limit_closes_1009_and_others_keep_going(server) -> None:
    async def run() -> int | None:
        async with connect(
            ws_url(server, "wsbig"), additional_headers=bearer(BETA), max_size=None
        ) as ws:
            await ws_until(ws, lambda m: m["type"] == "session.ready")
            try:
                await ws.send(b"\x00" * (MAX_MESSAGE + 1))
                await asyncio.wait_for(ws.recv(), 10)
                await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
            return None

    assert asyncio.run(run()) == 1009
    assert asyncio.run(session_ready(server, "wsbig", BETA))["stream_id"] == "wsbig"


async def session_ready(server: Any, stream: str, key: str) -> dict[str, Any]:
    async with connect(
        ws_url(server, stream), additional_headers=bearer(key), open_timeout=10
    ) as ws:
        return await ws_until(ws, lambda m: m["type"] == "session.ready", timeout=10)


def test_messages_out_of_order_are_answered(server) -> None:
    """input.end and a query before any frame, config twice, frames going backwards."""

    async def run() -> list[dict[str, Any]]:
        async with connect(ws_url(server, "order"), additional_headers=bearer(BETA)) as ws:
            await ws_until(ws, lambda m: m["type"] == "session.ready")
            await ws.send(json.dumps({"type": "input.end", "id": "e0"}))
            ended = await ws_until(ws, lambda m: m["type"] in ("input.ended", "error"))
            await ws.send(json.dumps({"type": "query", "id": "q0", "text": "what happened?"}))
            done = await ws_until(ws, lambda m: m["type"] in ("response.done", "error"))
            frame = jpeg_bytes()
            for t in (5.0, 4.0, 4.0, -3.0):  # backwards: skipped, never an error that kills it
                await ws.send(struct.pack(">d", t) + frame)
            await ws.send(json.dumps({"type": "ping"}))
            await ws_until(ws, lambda m: m["type"] == "pong")
            return [ended, done]

    ended, done = asyncio.run(asyncio.wait_for(run(), 60))
    assert ended == {"type": "input.ended", "id": "e0", "events": 0}, ended
    assert done["type"] == "response.done" and done["id"] == "q0", done


def test_a_late_resume_false_deletes_nothing(server, stored) -> None:
    """``resume: false`` starts a stream over only before its first frame; sent after one it
    must not delete what is stored (the session goes on)."""

    async def run() -> dict[str, Any]:
        async with connect(ws_url(server, "kept"), additional_headers=bearer(ALPHA)) as ws:
            await ws_until(ws, lambda m: m["type"] == "session.ready")
            await ws.send(struct.pack(">d", 0.0) + jpeg_bytes())
            await ws.send(json.dumps({"type": "session.config", "resume": False}))
            return await ws_until(ws, lambda m: m["type"] in ("session.ready", "error"))

    answer = asyncio.run(asyncio.wait_for(run(), 30))
    assert answer["type"] == "session.ready" and answer["resumed"] is True, answer
    assert stored["ids"] <= event_ids(server.url, ALPHA, "kept")


def test_ws_bad_stream_ids_are_refused_before_accept(server) -> None:
    for stream in ("..", "%2E%2E", "...", "a%00b", "cam%C3%A9", "..%2F..%2Fetc", "x" * 65):
        status = asyncio.run(ws_refusal(ws_url(server, stream), additional_headers=bearer(BETA)))
        assert status in (400, 404), (stream, status)
    assert asyncio.run(ws_refusal(ws_url(server, "nokey"))) == 401
    elsewhere = server.url.replace("http", "ws") + "/v1/nothing/ws"
    assert asyncio.run(ws_refusal(elsewhere, additional_headers=bearer(BETA))) == 404


def test_rapid_connect_and_disconnect_leaves_no_session_behind(server) -> None:
    """40 connections that hang up at once (half before reading anything): afterwards the same
    stream opens at once (no stale `stream_busy`), and the key's session quota is free."""

    async def churn() -> None:
        for i in range(40):
            ws = await connect(ws_url(server, "churn"), additional_headers=bearer(BETA))
            if i % 2:
                await ws.send(struct.pack(">d", float(i)) + jpeg_bytes())
            await ws.close()
        import socket

        for _ in range(20):  # TCP reset mid-handshake
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(f"GET /v1/streams/churn/ws HTTP/1.1\r\nHost: {server.host}\r\n".encode())
            sock.close()

    asyncio.run(asyncio.wait_for(churn(), 60))
    deadline = time.monotonic() + 10
    while True:
        try:
            ready = asyncio.run(session_ready(server, "churn", BETA))
            break
        except Exception:
            assert time.monotonic() < deadline, "the stream stayed busy after the clients left"
            time.sleep(0.3)
    assert ready["stream_id"] == "churn"
    others = [asyncio.run(session_ready(server, f"after-churn-{i}", BETA)) for i in range(4)]
    assert len(others) == 4


def test_a_client_that_never_reads_is_closed_and_others_are_served(server) -> None:
    """Configs sent without ever reading the answers (a ``session.ready`` each): past the send
    backlog the server closes the socket (1008) instead of buffering without bound; a second
    client is then served. (test_security_open.py measures memory and lag under this.)"""
    config = json.dumps({"type": "session.config", "generate": False})
    messages = (config for _ in range(100_000))
    sent, code, reason = flood(server.port, "/v1/streams/deaf/ws", messages, 4 << 20, key=BETA)
    assert code == 1008 and "not reading" in reason, (sent, code, reason)
    assert asyncio.run(session_ready(server, "deaf-neighbour", BETA))["stream_id"]


def test_zz_the_server_kept_serving_and_lost_nothing(server, stored) -> None:
    """After every probe: alpha's stored stream, job and watch are intact, the server answers,
    and its log has no traceback (every failure was a one-line refusal)."""
    assert stored["ids"] <= event_ids(server.url, ALPHA, "kept")
    job = httpx.get(f"{server.url}/v1/jobs/{stored['job']}", headers=bearer(ALPHA))
    assert job.status_code == 200 and job.json()["state"] == "done", job.text
    watch = httpx.get(f"{server.url}/v1/watches/{stored['watch']}", headers=bearer(ALPHA))
    assert watch.status_code == 200, watch.text
    answer = httpx.post(
        f"{server.url}/v1/query", json={"text": "what happened?", "stream": "kept"},
        headers=bearer(ALPHA), timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    log = server.log_text()
    assert "Traceback" not in log, log[-6000:]
    assert " 500 " not in log, [line for line in log.splitlines() if " 500 " in line][:5]
