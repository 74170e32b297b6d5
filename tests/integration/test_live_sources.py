"""Live pull sources against real servers the tests start: GStreamer's RTSP server (run by
Debian's python3, see servers/rtsp_server.py), an HTTP MJPEG (multipart/x-mixed-replace) server,
and HLS segments written by ffmpeg behind Python's http.server.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from servers.mjpeg import MjpegCamera, free_port

from eventvstream.errors import MediaError
from eventvstream.media.live import LiveSource

pytestmark = pytest.mark.slow
SERVERS = Path(__file__).resolve().parent / "servers"
SYSTEM_PYTHON = "/usr/bin/python3"


# -- an MJPEG camera ---------------------------------------------------------------------------


@pytest.fixture
def camera(jpegs) -> Iterator[MjpegCamera]:
    cam = MjpegCamera(jpegs).start()
    yield cam
    cam.stop()


def take(source: LiveSource, n: int, timeout: float = 20.0) -> list:
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frame = source.get(timeout=0.5)
        if frame is not None:
            frames.append(frame)
    assert len(frames) == n, source.status()
    return frames


def test_mjpeg_camera_is_sampled_on_the_wall_clock(camera):
    with LiveSource(camera.url, fps=2.0, short_side=64) as source:
        info = source.wait_ready(15)
        frames = take(source, 5)
        status = source.status()
    assert (info.width, info.height, info.out_height) == (320, 240, 64)
    assert frames[0].image.shape == (64, 85, 3) or frames[0].image.shape == (64, 86, 3)
    gaps = np.diff([f.t for f in frames])
    assert np.all(gaps > 0.4) and np.all(gaps < 0.8), gaps  # 2 fps from a 10 fps camera
    assert abs(frames[0].wall - (info.wall_start + frames[0].t)) < 0.05
    assert status["state"] == "live" and status["frames_read"] > status["frames_sampled"]


def test_a_slow_consumer_gets_recent_frames_not_a_backlog(camera):
    with LiveSource(camera.url, fps=10.0, short_side=32, buffer_frames=2) as source:
        source.wait_ready(15)
        time.sleep(3.0)  # consume nothing for 3 s: ~30 frames sampled
        status = source.status()
        frame = source.get(timeout=2)
    assert frame is not None
    assert status["frames_dropped"] >= 15, status
    assert time.time() - frame.wall < 0.5  # what is delivered is recent


def test_camera_reboot_reconnects_and_time_goes_on(camera):
    with LiveSource(camera.url, fps=2.0, short_side=32, backoff_s=0.2, max_backoff_s=1.0) as s:
        s.wait_ready(15)
        before = take(s, 2)
        camera.stop()
        deadline = time.monotonic() + 10
        while s.status()["state"] != "reconnecting" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.status()["state"] == "reconnecting"
        time.sleep(1.0)
        camera.start()
        back = time.monotonic()
        after = take(s, 2)
        reconnected_in = time.monotonic() - back
        status = s.status()
    assert status["state"] == "live" and status["connects"] == 2
    assert reconnected_in < 5.0
    times = [f.t for f in before + after]
    assert times == sorted(times) and after[0].t - before[-1].t > 1.0  # the outage is a gap
    assert [f.index for f in before + after] == sorted({f.index for f in before + after})


def test_stop_ends_a_wait_for_a_camera_that_never_answers():
    """Ctrl-C (``stop``) or deleting a pulled stream while its camera is unreachable: the wait
    for the first frame ends with a clear error instead of blocking forever."""
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"  # nothing listens there
    with LiveSource(url, fps=2.0, backoff_s=0.2) as source:
        threading.Timer(0.5, source.stop).start()
        started = time.monotonic()
        with pytest.raises(MediaError) as info:
            source.wait_ready()  # no timeout: only the stop can end it
        assert time.monotonic() - started < 5.0
    assert info.value.code in ("source_stopped", "source_failed")


def test_wrong_credentials_fail_once_without_a_retry_storm(jpegs):
    cam = MjpegCamera(jpegs, credentials="admin:right").start()
    try:
        url = f"http://admin:wrong@127.0.0.1:{cam.port}/stream.mjpg"
        with LiveSource(url, fps=2.0, backoff_s=0.1) as source:
            with pytest.raises(MediaError) as info:
                source.wait_ready(15)
            time.sleep(1.0)
            status = source.status()
        assert info.value.code == "source_unauthorized"
        assert "wrong" not in info.value.message and "***" in info.value.message
        assert status["state"] == "failed" and cam.requests <= 2
        good = f"http://admin:right@127.0.0.1:{cam.port}/stream.mjpg"
        with LiveSource(good, fps=2.0) as source:
            assert source.wait_ready(15).width == 320
    finally:
        cam.stop()


def test_a_source_that_never_answers_times_out_and_backs_off():
    """A TCP port that accepts connections and then says nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        url = f"rtsp://cam:secret@127.0.0.1:{port}/stream"
        t0 = time.monotonic()
        source = LiveSource(
            url, open_timeout_s=1.0, read_timeout_s=1.0, backoff_s=0.5, max_failures=3
        )
        with source, pytest.raises(MediaError) as info:
            source.wait_ready(30)
        elapsed = time.monotonic() - t0
        status = source.status()
    finally:
        listener.close()
    assert status["state"] == "failed" and status["reconnects"] == 2
    assert info.value.code == "source_unreachable"
    assert "secret" not in info.value.message and "gave up after 3 tries" in info.value.message
    assert 2.5 < elapsed < 20  # three 1 s timeouts and two back-offs, not a hang


# -- HLS ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hls_server(tmp_path_factory) -> Iterator[str]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    root = tmp_path_factory.mktemp("hls")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=6",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "hls",
         "-hls_time", "1", "-hls_playlist_type", "vod", str(root / "index.m3u8")],
        check=True,
    )  # fmt: skip
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.m3u8"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_hls_playlist_reads_to_its_end_on_its_own_clock(hls_server):
    with LiveSource(hls_server, fps=2.0, short_side=32) as source:
        chunks = list(source)
        status = source.status()
        info = source.info
    times = np.concatenate([c.times for c in chunks])
    assert status["state"] == "ended" and status["frames_read"] == 150
    np.testing.assert_allclose(times[:12], np.arange(12) * 0.5, atol=0.05)  # media time
    assert info is not None and info.duration == pytest.approx(6.0, abs=0.6)


# -- RTMP (ffmpeg as the server) ---------------------------------------------------------------
def test_rtmp_publisher(tmp_path):
    """ffmpeg listening as an RTMP server (``-listen 1``) and publishing a live H.264 pattern,
    as a phone app or OBS would publish to a restreamer."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    url = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    server = subprocess.Popen(
        ["ffmpeg", "-v", "quiet", "-re", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10",
         "-t", "30", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
         "-g", "10", "-f", "flv", "-listen", "1", url],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # until it listens
        with LiveSource(url, fps=2.0, short_side=48, backoff_s=0.5) as source:
            info = source.wait_ready(20)
            frames = take(source, 3)
            status = source.status()
    finally:
        server.kill()
        server.wait(timeout=5)
    assert (info.width, info.height) == (320, 240) and status["state"] == "live"
    assert np.all(np.diff([f.t for f in frames]) > 0.35)


# -- RTSP (GStreamer) --------------------------------------------------------------------------
def _gst_rtsp_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0')"
    probe += "; from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


class RtspServer:
    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> RtspServer:
        cmd = [SYSTEM_PYTHON, str(SERVERS / "rtsp_server.py"), str(self.port), *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == "ready", line
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


needs_rtsp = pytest.mark.skipif(
    not _gst_rtsp_available(),
    reason="GStreamer RTSP server missing (apt-get install gir1.2-gst-rtsp-server-1.0 "
    "python3-gi gstreamer1.0-plugins-{base,good,bad,ugly})",
)


@needs_rtsp
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_camera_over_tcp_and_udp(transport):
    server = RtspServer("--fps", "10").start()
    try:
        url = f"rtsp://127.0.0.1:{server.port}/cam"
        with LiveSource(url, fps=2.0, short_side=48, transport=transport) as source:
            info = source.wait_ready(20)
            frames = take(source, 4)
            status = source.status()
    finally:
        server.kill()
    assert (info.width, info.height) == (320, 240)
    assert status["state"] == "live" and status["lag_p95_s"] < 1.0
    gaps = np.diff([f.t for f in frames])
    assert np.all(gaps > 0.35) and np.all(gaps < 0.9), gaps


@needs_rtsp
def test_rtsp_server_killed_mid_stream_comes_back():
    server = RtspServer().start()
    try:
        url = f"rtsp://127.0.0.1:{server.port}/cam"
        with LiveSource(url, fps=2.0, short_side=32, backoff_s=0.3, max_backoff_s=2.0) as s:
            s.wait_ready(20)
            before = take(s, 2)
            server.kill()  # the camera dies: no goodbye
            deadline = time.monotonic() + 20
            while s.status()["state"] != "reconnecting" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert s.status()["state"] == "reconnecting", s.status()
            server.start()
            back = time.monotonic()
            after = take(s, 2, timeout=30)
            reconnected_in = time.monotonic() - back
            status = s.status()
    finally:
        server.kill()
    assert status["connects"] == 2 and status["state"] == "live"
    print(f"RTSP source live again {reconnected_in:.2f} s after the camera came back")  # with -s
    assert reconnected_in < 10.0, reconnected_in
    indices = [f.index for f in before + after]
    assert indices == sorted(set(indices))  # nothing delivered twice
    assert after[0].t > before[-1].t


@needs_rtsp
def test_rtsp_wrong_credentials_are_a_clear_error():
    server = RtspServer("--user", "viewer", "--password", "right-pass").start()
    try:
        base = f"127.0.0.1:{server.port}/cam"
        with LiveSource(f"rtsp://viewer:wrong-pass@{base}", backoff_s=0.1) as source:
            with pytest.raises(MediaError) as info:
                source.wait_ready(20)
            assert source.status()["reconnects"] == 0
        assert info.value.code == "source_unauthorized"
        assert "wrong-pass" not in str(info.value) and "401" in info.value.message
        with LiveSource(f"rtsp://viewer:right-pass@{base}", short_side=32) as source:
            assert source.wait_ready(20).width == 320
    finally:
        server.kill()


# -- evs run URL -------------------------------------------------------------------------------
def test_evs_run_url_until(jpegs, tmp_path):
    """`evs run URL --until S` on a password-protected MJPEG camera: events stored and
    reported, the last one ending at S, and the password nowhere in output, memory or report."""
    import json

    from cli_runner import evs

    cam = MjpegCamera(jpegs, credentials="admin:s3cret-pw").start()
    try:
        url = f"http://admin:s3cret-pw@127.0.0.1:{cam.port}/stream.mjpg"
        data = tmp_path / "data"
        result = evs(
            "run", url, "--until", "4", "--config", "tiny", "--no-captions", "--json",
            "--data-dir", str(data), "--stream", "door", "--report", str(tmp_path / "report"),
        )  # fmt: skip
    finally:
        cam.stop()
    assert result.returncode == 0, result.stderr
    stored = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert stored and all(s["type"] == "stored" for s in stored)
    assert stored[0]["start"] == 0.0
    assert 3.5 <= stored[-1]["end"] <= 4.6
    assert "as stream 'door'" in result.stderr
    leaks = [result.stdout, result.stderr]
    leaks += [p.read_bytes().decode("latin-1") for p in data.rglob("*") if p.is_file()]
    leaks += [p.read_text() for p in (tmp_path / "report").glob("*.json")]
    assert not any("s3cret-pw" in text for text in leaks)
