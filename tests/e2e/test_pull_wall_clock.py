"""A real ``evs serve`` process pulls a real MJPEG camera (an HTTP server in the test), is
stopped (SIGTERM) and started again on the same data directory, and pulls again: questions
about a wall-clock moment ("since 10:30:05", "at 10:29:58") are answered with the events the
camera saw then, although the restart continued the stream's timeline just after its last event.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from servers.mjpeg import MjpegCamera

pytestmark = pytest.mark.e2e

# events of at most 2 s, never merged (the test pattern looks alike from second to second), no
# decoder (the answers here are timelines, which need none)
ENV = {
    "EVS_EVENTS__MAX_EVENT_S": "2",
    "EVS_MEMORY__MERGE_THRESHOLD": "1.0",
    "EVS_LANGUAGE__BACKEND": "none",
}


def until(check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s")


def camera_frames(tmp: Path) -> list[bytes]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=1",
         "-q:v", "5", str(tmp / "f%03d.jpg")],
        check=True,
    )  # fmt: skip
    return [p.read_bytes() for p in sorted(tmp.glob("f*.jpg"))]


def clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(wall))  # language.timezone: UTC by default


def test_wall_clock_questions_after_a_server_restart(tmp_path: Path, server_launcher) -> None:
    cam = MjpegCamera(camera_frames(tmp_path)).start()
    body = {"id": "yard", "source": {"url": cam.url, "fps": 2}}
    data = tmp_path / "data"

    def events(url: str) -> list[dict[str, Any]]:
        return httpx.get(f"{url}/v1/streams/yard/events?limit=500").json()["events"]

    try:
        server = server_launcher(tmp_path / "first", env=ENV, data_dir=data)
        try:
            began = time.time()
            assert httpx.post(f"{server.url}/v1/streams", json=body).status_code == 201
            until(lambda: len(events(server.url)) >= 3, 90)
        finally:
            server.stop()  # SIGTERM: the open event is stored on the way out
        time.sleep(4.0)  # the outage
        server = server_launcher(tmp_path / "second", env=ENV, data_dir=data)
        try:
            first = events(server.url)
            restarted = time.time()
            assert httpx.post(f"{server.url}/v1/streams", json=body).status_code == 200
            until(lambda: len(events(server.url)) >= len(first) + 2, 90)
            everything = events(server.url)
            second = everything[len(first) :]
            in_gap = math.ceil(first[-1]["wall_end"]) + 1
            since = httpx.post(
                f"{server.url}/v1/query",
                json={"text": f"what happened since {clock(in_gap)}?", "stream": "yard"},
                timeout=60,
            ).json()
            target = first[1]
            moment = math.floor((target["wall_start"] + target["wall_end"]) / 2)
            at = httpx.post(
                f"{server.url}/v1/query",
                json={"text": f"what happened at {clock(moment)}?", "stream": "yard"},
                timeout=60,
            ).json()
        finally:
            server.stop()
    finally:
        cam.stop()

    assert began <= first[0]["wall_start"] <= began + 30
    assert restarted <= second[0]["wall_start"] <= restarted + 30
    # stream time went on just after the last event; the wall clock went on through the outage
    assert second[0]["start"] - first[-1]["end"] < 2.0
    assert second[0]["wall_start"] - first[-1]["wall_end"] > 3.5
    assert in_gap < second[0]["wall_start"]
    # events stored before the restart still answer: "since" a moment in the outage is the
    # second run's events and only those, whatever the stream times say
    cited = {c["id"] for c in since["citations"]}
    assert cited and cited <= {e["id"] for e in second}, since
    assert all(c["wall_start"] >= in_gap for c in since["citations"])
    assert target["id"] in {c["id"] for c in at["citations"]}, at
    for c in at["citations"]:
        assert c["wall_start"] <= moment + 1 and c["wall_end"] >= moment
