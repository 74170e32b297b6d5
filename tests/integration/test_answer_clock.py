"""Answers say when on the clock for a live stream and in stream time for an uploaded file
(real engine, tiny models, FastAPI TestClient; the zone is set to Europe/Berlin to show the
setting reaches the answer text, not only the default UTC).

A WebSocket stream's events carry ``wall_start``/``wall_end``; its answers (over the WebSocket
and REST) state those moments on the Berlin clock, e.g. "from 11:31:05 to 11:31:14 CET", with
the cited events' own times, and a range written as clock times ("between 9:15:03 am and
09:15:06") is read on that clock. The same server's answer about an uploaded file says seconds,
and reads "between 0:00 and 0:03" as stream times.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from api_support import (
    EVENTS,
    KEYS,
    LANGUAGE,
    TEST_HOSTS,
    auth,
    binary_frame,
    cut_frames,
    jpeg,
    receive_until,
    wait_ready,
)
from fastapi.testclient import TestClient

from eventvstream.api import create_app
from eventvstream.config import load_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ZONE = "Europe/Berlin"
STREAM_TIME = re.compile(r"\d s to \d|\d+\.\d s\b")


def on_clock(unix: float) -> str:
    """How the answer must write a Unix time: the Berlin clock, seconds cut."""
    return datetime.fromtimestamp(unix, ZoneInfo(ZONE)).strftime("%H:%M:%S")


def says(text: str, line: str, *times: float) -> bool:
    """Whether ``text`` has ``line`` with ``{}`` filled by ``times`` on the clock (either side
    of the millisecond the payload rounded them to)."""
    return any(line.format(*(on_clock(t + d) for t in times)) in text for d in (-0.001, 0.0, 0.001))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("skimage")  # the photos the synthetic clips are made of
    settings = load_settings(
        "tiny",
        language=LANGUAGE | {"timezone": ZONE},
        memory={"data_dir": str(tmp_path_factory.mktemp("clock-memory"))},
        server={"api_keys": list(KEYS), "status_interval_s": 0.2, "rate_per_s": 1000.0,
                "burst": 1000, "allowed_hosts": TEST_HOSTS},
    )  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def ask(client: Any, text: str, stream: str) -> dict[str, Any]:
    response = client.post("/v1/query", json={"text": text, "stream": stream}, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def live_stream(client: Any, stream: str) -> dict[str, Any]:
    """Frames of a clip with cuts over the WebSocket (a few at a time, so none is dropped),
    the open event closed; then "what is happening now?" asked on the same socket."""
    frames = cut_frames()
    with client.websocket_connect(f"/v1/streams/{stream}/ws", headers=auth()) as ws:
        receive_until(ws, lambda m: m["type"] == "session.ready")
        ws.send_json({"type": "session.config", "events": EVENTS, "generate": False})
        receive_until(ws, lambda m: m["type"] == "session.ready")
        for start in range(0, len(frames), 4):
            for i in range(start, min(start + 4, len(frames))):
                ws.send_bytes(binary_frame(i / 2.0, jpeg(frames[i])))
            receive_until(
                ws, lambda m, n=i + 1: m["type"] == "status" and m["frames_processed"] >= n
            )
        ws.send_json({"type": "input.end", "id": "end"})
        receive_until(ws, lambda m: m["type"] == "input.ended")
        ws.send_json({"type": "query", "id": "now", "text": "what is happening now?"})
        now, _ = receive_until(ws, lambda m: m["type"] == "response.done" and m["id"] == "now")
    return now


def test_a_live_streams_answers_state_the_clock_of_their_events(client: Any) -> None:
    now = live_stream(client, "clock-cam")
    events = client.get("/v1/streams/clock-cam/events", headers=auth()).json()["events"]
    assert len(events) >= 2 and all(e.get("wall_start") for e in events)

    # "now" over the WebSocket: the last stored event, on the clock, cited
    last = events[-1]
    assert [c["id"] for c in now["citations"]] == [last["id"]], now
    # CET or CEST: the zone is named
    assert says(now["text"], "{} to {} CE", last["wall_start"], last["wall_end"]), now["text"]
    assert not STREAM_TIME.search(now["text"]), now["text"]

    # a summary over REST: every cited event's line states its own clock times
    summary = ask(client, "what happened?", "clock-cam")
    assert summary["citations"] and not STREAM_TIME.search(summary["text"]), summary
    for c in summary["citations"]:
        line = f"[#{c['id']}] {{}} to {{}} "
        assert says(summary["text"], line, c["wall_start"], c["wall_end"]), (c, summary["text"])

    # a clock window is said as asked, in the zone, and cites the event that was on then
    # (frames went faster than real time: wait until that moment is past, or it is tomorrow's)
    target = events[0]
    middle = (target["wall_start"] + target["wall_end"]) / 2
    time.sleep(max(0.0, middle + 1.5 - time.time()))
    at = ask(client, f"what happened at {on_clock(middle)}?", "clock-cam")
    assert f"at {on_clock(middle)} CE" in at["text"], at["text"]
    assert target["id"] in {c["id"] for c in at["citations"]}, at
    assert says(
        at["text"], f"[#{target['id']}] {{}} to {{}} ", target["wall_start"], target["wall_end"]
    )
    recent = ask(client, "what happened in the last 5 minutes?", "clock-cam")
    assert "in the last 5 minutes" in recent["text"] and recent["citations"], recent
    a_range_of_clock_times(client, events)


def a_range_of_clock_times(client: Any, events: list[dict[str, Any]]) -> None:
    """ "between 9:15:03 am and 09:15:06" (one end 12-hour, one 24-hour) is read on the
    clock: its answer says the range as read, in the zone, and cites the events then, none
    outside it; a range before the stream began has nothing in it, and says so."""
    first, second = events[0], events[1]
    start, end = int(first["wall_start"]), int(second["wall_start"]) + 1  # whole seconds
    time.sleep(max(0.0, end + 1.5 - time.time()))
    twelve = datetime.fromtimestamp(start, ZoneInfo(ZONE)).strftime("%I:%M:%S %p").lower()
    question = f"what happened between {twelve.lstrip('0')} and {on_clock(end)}?"
    ranged = ask(client, question, "clock-cam")
    assert f"between {on_clock(start)} and {on_clock(end)} CE" in ranged["text"], ranged
    cited = ranged["citations"]
    assert {first["id"], second["id"]} <= {c["id"] for c in cited}, (question, ranged)
    for c in cited:  # in the window (the clock is read to the second)
        assert c["wall_start"] < end + 1 and c["wall_end"] >= start, (question, c)
        line = f"[#{c['id']}] {{}} to {{}} "
        assert says(ranged["text"], line, c["wall_start"], c["wall_end"]), ranged["text"]
    assert not STREAM_TIME.search(ranged["text"]), ranged["text"]
    before = first["wall_start"] - 7200
    empty = ask(
        client, f"what happened from {on_clock(before)} to {on_clock(before + 60)}", "clock-cam"
    )
    assert empty["citations"] == [] and "no events in memory" in empty["text"], empty


def test_an_uploaded_files_answer_keeps_stream_times(client: Any, video_dir: Path) -> None:
    from eventvstream import testdata

    path = video_dir / "clock_upload.mp4"
    testdata.render_clip(testdata.cuts_clip(11, n_shots=3, shot_s=(2.5, 3.0)), path, 128, 72, 5.0)
    client.post("/v1/streams", json={"id": "clock-file"}, headers=auth())
    headers = auth() | {"Content-Type": "video/mp4"}
    accepted = client.post(
        "/v1/streams/clock-file/uploads", content=path.read_bytes(), headers=headers
    )
    assert accepted.status_code == 202, accepted.text
    job_url = f"/v1/jobs/{accepted.json()['job_id']}"
    deadline = time.monotonic() + 90
    while client.get(job_url, headers=auth()).json()["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the upload job did not finish"
        time.sleep(0.2)
    answer = ask(client, "what happened?", "clock-file")
    assert answer["citations"] and all(c.get("wall_start") is None for c in answer["citations"])
    first = answer["citations"][0]
    assert re.search(rf"\[#{first['id']}\] \d+\.\d s to \d+\.\d s", answer["text"]), answer
    assert "CET" not in answer["text"] and "CEST" not in answer["text"]
    # a range of player times stays stream time; one written with am/pm cannot be placed
    ranged = ask(client, "what happened between 0:00 and 0:03?", "clock-file")
    assert ranged["citations"] and all(c["start"] <= 3.0 for c in ranged["citations"])
    assert "between 0.0 s and 3.0 s" in ranged["text"], ranged
    unplaced = ask(client, "what happened from 9am to 11?", "clock-file")
    assert unplaced["citations"] == [] and "cannot place 9am to 11" in unplaced["text"]
