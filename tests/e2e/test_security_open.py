"""Issue 11's attacks on the no-key loopback mode (the README's default), the WebSocket send
queue, and the smaller findings (headers, offline docs, auth throttling, logs, temp files), each
against a real `evs serve` process."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_support import (
    ALPHA,
    KEYED_ENV,
    OPEN_ENV,
    bearer,
    flood,
    make_video,
    no_traceback,
    open_slow_upload,
    raw_request,
    ws_refusal,
    ws_until,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import binary_frame, cut_frames, jpeg

pytestmark = pytest.mark.e2e
websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402

EVIL = "http://evil.example"
HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_launcher: Any) -> Iterator[Any]:
    proc = server_launcher(tmp_path_factory.mktemp("open"), env=OPEN_ENV)
    try:
        yield proc
    finally:
        proc.stop()


def ws_base(server: Any) -> str:
    return server.url.replace("http", "ws")


def test_7_open_mode_answers_only_its_own_origin_and_host(server) -> None:
    """Attack 7: without keys, a page on evil.example could open a WebSocket (read and wipe a
    stream), post a cross-origin multipart upload (202), and DNS rebinding was served."""
    url = ws_base(server) + "/v1/streams/cam/ws"
    own = f"http://{server.host}"
    assert asyncio.run(ws_refusal(url, origin=EVIL)) == 403
    assert asyncio.run(ws_refusal(url, origin="null")) == 403
    assert asyncio.run(ws_refusal(url, origin=own)) is None  # the page itself
    assert asyncio.run(ws_refusal(url)) is None  # a non-browser client sends no Origin
    multipart = {"file": ("a.mp4", b"\x00" * 64, "video/mp4")}
    streams = f"{server.url}/v1/streams"
    assert httpx.post(streams, json={"id": "cam"}, headers={"Origin": own}).status_code in (
        200,
        201,
    )
    refused = httpx.post(f"{streams}/cam/uploads", files=multipart, headers={"Origin": EVIL})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden_origin"
    gone = httpx.delete(f"{streams}/cam", headers={"Origin": EVIL})
    assert gone.status_code == 403
    rebound = {"Host": f"rebind.evil.example:{server.port}"}
    for path in ("/", "/v1/streams", "/openapi.json"):
        response = httpx.get(server.url + path, headers=rebound)
        assert response.status_code == 403, (path, response.status_code)
        assert response.json()["error"]["code"] == "bad_host"
    upgrade = (
        f"GET /v1/streams/cam/ws HTTP/1.1\r\nHost: rebind.evil.example:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    assert raw_request(server.port, upgrade).startswith(b"HTTP/1.1 403")
    assert asyncio.run(ws_refusal(url, additional_headers=rebound)) == 403  # two Host headers
    assert httpx.get(streams, headers={"Host": f"localhost:{server.port}"}).status_code == 200


def test_security_headers_on_the_page_and_the_api(server) -> None:
    for path in ("/", "/v1/streams", "/healthz", "/openapi.json", "/docs", "/v1/no-such"):
        response = httpx.get(server.url + path)
        missing = [h for h in HEADERS if h not in response.headers]
        assert not missing, (path, missing)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    page = httpx.get(server.url + "/").headers["content-security-policy"]
    assert "script-src 'self';" in page and "unsafe" not in page.split("style-src")[0]
    assert "frame-ancestors 'none'" in page
    api = httpx.get(server.url + "/v1/streams").headers["content-security-policy"]
    assert api.startswith("default-src 'none'")


def test_docs_and_redoc_are_served_from_local_assets(server) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = httpx.get(server.url + page)
        assert html.status_code == 200 and f"/docs-assets/{asset}" in html.text
        assert "http" not in html.text.split("<body>")[1], html.text  # nothing from elsewhere
        script = httpx.get(f"{server.url}/docs-assets/{asset}")
        assert script.status_code == 200 and len(script.content) > 100_000
    assert httpx.get(server.url + "/docs-assets/swagger-ui.css").status_code == 200
    assert "SwaggerUIBundle" in httpx.get(server.url + "/static/docs/swagger-init.js").text


def test_refused_handshakes_and_client_disconnects_log_one_line(server) -> None:
    """Issue 11.8: each logged an ERROR with a traceback."""
    url = ws_base(server) + "/v1/streams/bad%20id/ws"
    assert asyncio.run(ws_refusal(url)) == 400
    assert asyncio.run(ws_refusal(ws_base(server) + "/v1/streams/x/ws", origin=EVIL)) == 403
    httpx.post(f"{server.url}/v1/streams", json={"id": "gone"})
    sock = open_slow_upload(server.port, "gone", key="none")
    time.sleep(0.5)
    sock.close()  # the client leaves mid-upload
    deadline = time.monotonic() + 10
    while "disconnected during POST" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.2)
    log = server.log_text()
    assert "refused WebSocket" in log and "bad_request" in log
    no_traceback(log)
    assert not list((server.data_dir / "uploads").glob("evs-upload-*"))


async def _victim(url: str, stop: asyncio.Event, lags: list[tuple[float, float]]) -> int:
    """A well-behaved 2-fps stream; collects (when, the server's lag_s) while it runs."""
    frames = [jpeg(f) for f in cut_frames()]
    async with connect(url, max_size=None) as ws:
        await ws_until(ws, lambda m: m["type"] == "session.ready")
        await ws.send(json.dumps({"type": "session.config", "generate": False}))

        async def read() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "status":
                    lags.append((time.monotonic(), message["lag_s"]))

        reader = asyncio.create_task(read())
        sent, started = 0, time.monotonic()
        while not stop.is_set():
            await ws.send(binary_frame(sent / 2.0, frames[sent % len(frames)]))
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / 2.0 - time.monotonic()))
        await asyncio.sleep(1.0)
        reader.cancel()
        return sent


def test_6_a_client_that_never_reads_is_closed_and_others_keep_real_time(server) -> None:
    """Attack 6: a non-reading client sending `{"type": "AAAA…"}` (4 MB) piled up echoed errors
    (+500 MB). Now an error quotes at most a few dozen characters, a client whose messages are
    all refused is closed (1008) after a few, a client that stops reading is closed (1008) once
    its unsent backlog passes the limit, the server's memory stays flat and another stream keeps
    up. 160 MB sent in all: 4 MB junk messages, then small valid ones (pings) never read."""
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:  # the server's resident memory, from the attack's start on
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    measured: dict[str, float] = {}

    junk = ('{"type": "' + "A" * ((4 << 20) - 12) + '"}' for _ in range(40))
    # valid messages whose answers (session.ready, ~1 KB each) pile up unread
    configs = (json.dumps({"type": "session.config", "generate": False}) for _ in range(10**6))

    async def scenario() -> tuple[Any, Any, int, list[float]]:
        stop, lags = asyncio.Event(), []
        victim = asyncio.create_task(_victim(ws_base(server) + "/v1/streams/victim/ws", stop, lags))
        await asyncio.sleep(4)  # past the session's warm-up
        control = time.monotonic()
        await asyncio.sleep(8)  # the same stream without an attack, for comparison
        measured["control"] = control
        measured["rss"], measured["cpu"] = server.rss_mib(), server.cpu_s()
        sampler.start()
        started = time.monotonic()
        junked = await asyncio.to_thread(flood, server.port, "/v1/streams/junk/ws", junk, 136 << 20)
        budget = (160 << 20) - junked[0]
        pinged = await asyncio.to_thread(
            flood, server.port, "/v1/streams/unread/ws", configs, budget
        )
        await asyncio.sleep(2)
        stop.set()
        frames = await victim
        measured["started"] = started
        return junked, pinged, frames, lags

    try:
        junked, pinged, frames, timed = asyncio.run(scenario())
    finally:
        done.set()
        if sampler.is_alive():
            sampler.join()
    baseline, cpu = measured["rss"], measured["cpu"]
    quiet = [lag for when, lag in timed if measured["control"] <= when < measured["started"]]
    lags = [lag for when, lag in timed if when >= measured["started"]]
    growth = peak[0] - baseline

    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    print(
        f"non-readers: junk {junked[0] >> 20} MiB closed {junked[1:]}, unread answers "
        f"{pinged[0] >> 20} MiB closed {pinged[1:]}; server RSS {baseline:.0f} -> peak "
        f"{peak[0]:.0f} MiB (+{growth:.0f}), CPU {server.cpu_s() - cpu:.1f} s; victim "
        f"{frames} frames, lag_s under attack p50 {p(lags, 0.5):.3f} p95 {p(lags, 0.95):.3f} "
        f"max {max(lags):.3f}, without p50 {p(quiet, 0.5):.3f} p95 {p(quiet, 0.95):.3f} "
        f"max {max(quiet):.3f}; lag_s under attack: {[round(x, 2) for x in lags]}"
    )
    assert junked[1] == 1008 and "bad messages in a row" in junked[2], junked
    assert pinged[1] == 1008 and "not reading" in pinged[2], pinged
    assert junked[0] + pinged[0] >= 120 << 20
    assert growth < 100, growth
    # the victim stays live: its 2 fps are processed about as fast as without the attack
    assert p(lags, 0.5) < 0.5 and p(lags, 0.95) < max(1.0, 2 * p(quiet, 0.95)), lags
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert asyncio.run(ws_refusal(ws_base(server) + "/v1/streams/after/ws")) is None


def test_failed_authentication_is_throttled_per_address(tmp_path: Path, server_launcher) -> None:
    """Issue 11.8: 750 wrong keys in a burst never got a 429."""
    env = KEYED_ENV | {"EVS_SERVER__AUTH_FAILURES": "5", "EVS_SERVER__AUTH_FAILURE_WINDOW_S": "4"}
    keyed = server_launcher(tmp_path, env=env)
    try:
        url = f"{keyed.url}/v1/streams"
        statuses = [httpx.get(url, headers=bearer(f"guess-{i}")).status_code for i in range(8)]
        assert statuses == [401] * 5 + [429] * 3, statuses
        throttled = httpx.get(url, headers=bearer(ALPHA))  # nothing to learn while throttled
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "auth_throttled"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 4
        ws_url = keyed.url.replace("http", "ws") + "/v1/streams/s/ws"
        assert asyncio.run(ws_refusal(ws_url, additional_headers=bearer("guess"))) == 429
        time.sleep(4.5)
        assert httpx.get(url, headers=bearer(ALPHA)).status_code == 200
    finally:
        keyed.stop()


def test_upload_temp_files_left_by_a_kill_9_are_removed_at_start(
    tmp_path: Path, server_launcher
) -> None:
    """Issue 11.8: `kill -9` during an upload left its `evs-upload-*` file behind forever."""
    first = server_launcher(tmp_path / "first", env=OPEN_ENV, data_dir=tmp_path / "data")
    try:
        httpx.post(f"{first.url}/v1/streams", json={"id": "s"})
        sock = open_slow_upload(first.port, "s", key="none", declared=4 << 20)
        spool = tmp_path / "data" / "uploads"
        deadline = time.monotonic() + 10
        while not list(spool.glob("evs-upload-*")):
            assert time.monotonic() < deadline, "the upload was never spooled"
            time.sleep(0.1)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        sock.close()
    finally:
        first.stop()
    left = list(spool.glob("evs-upload-*"))
    assert left, "kill -9 should have left the spooled upload behind"
    second = server_launcher(tmp_path / "second", env=OPEN_ENV, data_dir=tmp_path / "data")
    try:
        deadline = time.monotonic() + 10
        while any(p.exists() for p in left):
            assert time.monotonic() < deadline, [p.name for p in left]
            time.sleep(0.1)
        assert "removed 1 upload temp files" in second.log_text()
    finally:
        second.stop()
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_evs_stream_exits_cleanly_when_the_server_goes_away(
    tmp_path: Path, server_launcher
) -> None:
    """Issue 11.8: `evs stream` died with a Python traceback when the server went away."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    video = make_video(tmp_path / "clip.mp4", seconds=30)
    live = server_launcher(tmp_path / "server", env=OPEN_ENV)
    try:
        client = subprocess.Popen(
            [sys.executable, "-m", "eventvstream.cli", "stream", str(video), "--url", live.url,
             "--speed", "1", "--stream", "cam", "--no-generate"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "WebSocket /v1/streams/cam/ws" not in live.log_text():
            assert time.monotonic() < deadline and client.poll() is None, live.log_text()
            time.sleep(0.2)
        time.sleep(2)  # frames are flowing
        live.proc.send_signal(signal.SIGKILL)
        live.proc.wait(timeout=10)
        _, stderr = client.communicate(timeout=30)
    finally:
        live.stop()
    assert client.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert "evs: error [disconnected]" in stderr or "evs: error [unreachable]" in stderr, stderr
