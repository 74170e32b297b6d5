"""Every `evs` command given a bad argument: one clear error line on stderr, a non-zero exit,
nothing on stdout, no traceback (real subprocesses, as a user runs them)."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import evs


def assert_error(result: subprocess.CompletedProcess[str], status: int, text: str) -> str:
    """The error line (argparse puts its usage lines before it; ours stand alone)."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    if status == 1:
        assert len(lines) == 1, result.stderr
    assert text in lines[-1], result.stderr
    return lines[-1]


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def test_urls_the_command_cannot_read(tmp_path):
    line = assert_error(evs("run", "ftp://host/cam", "--data-dir", str(tmp_path)), 1, "ftp")
    assert "[unsupported_source]" in line and "rtsp://" in line and "/dev/videoN" in line
    segment = evs("segment", "rtsp://10.0.0.5/stream")
    assert "evs run" in assert_error(segment, 1, "[unsupported_source]")
    device = evs("run", "/dev/video97", "--data-dir", str(tmp_path))
    assert_error(device, 1, "[not_found]: capture device not found: /dev/video97")
    url = evs("stream", str(tmp_path), "--url", "ftp://127.0.0.1:1")
    assert_error(url, 1, "not a video file")  # the file first, then the URL
    (tmp_path / "clip.mp4").write_bytes(b"x")
    url = evs("stream", str(tmp_path / "clip.mp4"), "--url", "ftp://127.0.0.1:1")
    assert_error(url, 1, "[bad_url]")


def test_empty_or_missing_memory(tmp_path):
    missing = tmp_path / "typo"
    for args in (["query", "what happened?"], ["memory", "stats"], ["memory", "export"]):
        result = evs(*args, "--data-dir", str(missing))
        assert_error(result, 1, f"[memory_empty]: no memory in {missing}")
    assert not missing.exists()  # a read never creates a memory
    assert_error(evs("query", "hi", "--data-dir", str(tmp_path)), 1, "[memory_empty]")


def test_a_file_as_data_dir(garbage):
    result = evs("query", "what happened?", "--data-dir", str(garbage))
    assert_error(result, 2, "[invalid_config]: memory.data_dir (--data-dir) is a file")


def test_unwritable_trace_fails_before_the_work(garbage, tmp_path):
    result = evs("segment", str(garbage), "--trace", str(tmp_path / "no" / "trace.jsonl"))
    assert_error(result, 1, "[io_error]: No such file or directory")


def test_binary_boundary_file(garbage):
    assert_error(evs("eval", str(garbage), str(garbage)), 1, "[bad_input]")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["memory", "search", "x", "-k", "0"], "argument -k: must be a whole number above 0"),
        (["serve", "--port", "99999"], "argument --port: must be a port from 0 to 65535"),
        (["stream", "clip.mp4", "--fps", "-1"], "argument --fps: must be a number above 0"),
        (["stream", "clip.mp4", "--speed", "-2"], "argument --speed: must be 0"),
        (["run", "clip.mp4", "--until", "0"], "argument --until: must be a number above 0"),
        (["query", "x", "--config", "nosuch"], "[invalid_config]: unknown profile 'nosuch'"),
    ],
)
def test_bad_values(args, message):
    assert_error(evs(*args), 2, message)


def test_unreachable_camera_says_so_and_ctrl_c_stops_it(tmp_path):
    """Before this, `evs run rtsp://…` to a camera that does not answer was silent, and Ctrl-C
    left it waiting for a first frame forever."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://admin:s3cret-pw@127.0.0.1:{port}/stream"
    args = ["run", url, "--config", "tiny", "--no-captions", "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "eventvstream.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], deadline - time.monotonic())
            if not ready:
                break  # silence: the old behaviour
            line = process.stderr.readline()
            seen.append(line)
            if "reconnecting (" in line or not line:
                break
        assert seen and "reconnecting (" in seen[-1], seen
        assert "retrying in" in seen[-1] and "s3cret-pw" not in "".join(seen)
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=30)
    finally:
        process.kill()
    rest = process.stderr.read()
    assert status == 130 and "evs: interrupted" in rest and "Traceback" not in rest
