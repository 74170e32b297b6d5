"""The WebSocket protocol in process (FastAPI TestClient, real engine with tiny models).

Covers docs/protocol.md end to end: session.ready, frames (binary and base64 JSON) to
event.boundary on a clip with real cuts, captions, questions answered with citations of stored
events, errors that leave the session running, size limits, drop-oldest live semantics, auth
before accept, per-key isolation, session limits and resuming a stream's timeline.
"""

from __future__ import annotations

import base64
import contextlib
import time
from typing import Any

import pytest
from api_support import (
    EVENTS,
    auth,
    binary_frame,
    cut_frames,
    jpeg,
    receive_until,
    tiny_settings,
    wait_ready,
)
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from eventvstream.api import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LIMITS = {"frame_queue": 4, "max_sessions": 4, "max_frame_bytes": 64 << 10}
MAX_MESSAGE = 128 << 10


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("skimage")  # the photos the synthetic clips are made of
    data_dir = tmp_path_factory.mktemp("ws-memory")
    return create_app(tiny_settings(data_dir, max_message_bytes=MAX_MESSAGE, **LIMITS))


@pytest.fixture(scope="module")
def client(app: Any) -> Any:
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def connect(client: Any, stream: str, key: str = "key-a", **kw: Any) -> Any:
    return client.websocket_connect(f"/v1/streams/{stream}/ws", headers=auth(key), **kw)


class Session:
    """A TestClient WebSocket plus everything it has received so far."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self.used: set[int] = set()  # indexes of messages until() already returned
        self.sent = 0

    def until(self, want: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The first message, already received or still to come, that ``want`` accepts."""
        for index, message in enumerate(self.seen):
            if index not in self.used and want(message):
                self.used.add(index)
                return message
        message, before = receive_until(self.ws, want, timeout)
        self.seen += [*before, message]
        self.used.add(len(self.seen) - 1)
        return message

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m["type"] == kind]

    def send_frames(self, frames: Any, t0: float = 0.0, fps: float = 2.0) -> None:
        """Send in groups no larger than the frame queue, waiting for each group to be
        processed, so this test never drops frames (the drop test does that on purpose)."""
        group = LIMITS["frame_queue"]
        for start in range(0, len(frames), group):
            for i, frame in enumerate(frames[start : start + group], start):
                self.ws.send_bytes(binary_frame(t0 + i / fps, jpeg(frame)))
                self.sent += 1
            self.until(
                lambda m, sent=self.sent: m["type"] == "status" and m["frames_processed"] >= sent
            )


def test_session_ready_with_defaults_and_config(client: Any) -> None:
    with connect(client, "ready-cam") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "session.ready"
        assert ready["stream_id"] == "ready-cam" and ready["session_id"]
        assert ready["resumed"] is False and ready["events_in_memory"] == 0
        assert ready["config"]["fps"] == 2.0 and ready["config"]["generate"] is True
        assert ready["limits"] == {
            "max_frame_bytes": LIMITS["max_frame_bytes"],
            "max_message_bytes": MAX_MESSAGE,
            "frame_queue": LIMITS["frame_queue"],
        }
        ws.send_json({"type": "session.config", "fps": 4.0, "events": {"min_event_s": 2.0}})
        again, _ = receive_until(ws, lambda m: m["type"] == "session.ready")
        assert again["config"]["fps"] == 4.0
        assert again["config"]["events"]["min_event_s"] == 2.0
        ws.send_json({"type": "session.config", "events": {"min_event_s": 500}})  # > max_event_s
        error, _ = receive_until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "bad_config" and "max_event_s" in error["message"]
        ws.send_json({"type": "ping"})
        receive_until(ws, lambda m: m["type"] == "pong")


def test_frames_become_events_captions_and_cited_answers(client: Any) -> None:
    frames = cut_frames()
    with connect(client, "cuts-cam") as ws:
        session = Session(ws)
        session.until(lambda m: m["type"] == "session.ready")
        ws.send_json({"type": "session.config", "events": EVENTS, "generate": True})
        session.until(lambda m: m["type"] == "session.ready")
        session.send_frames(frames)
        boundary = session.until(lambda m: m["type"] == "event.boundary")
        assert boundary["stream_id"] == "cuts-cam" and boundary["end"] > boundary["start"] >= 0
        assert boundary["boundary"]["reason"] == "cue"
        scores = boundary["boundary"]["scores"]
        assert scores["fused"] > boundary["boundary"]["threshold"]
        assert {"semantic", "motion", "predictive", "semantic_norm"} <= set(scores)
        done = session.until(
            lambda m: m["type"] == "event.caption.done" and m["event_id"] == boundary["event_id"]
        )
        assert done["caption"] and done["latency_s"] >= 0
        deltas = [
            m for m in session.of_type("event.caption.delta") if m["event_id"] == done["event_id"]
        ]
        assert deltas, "captions stream as deltas before done"
        status = session.until(
            lambda m: m["type"] == "status" and m["frames_processed"] == len(frames) and m["events"]
        )
        assert status["frames_received"] == len(frames) and status["frames_dropped"] == 0
        assert status["queue_depth"] == 0 and status["lag_p95_s"] > 0

        ws.send_json({"type": "query", "id": "q1", "text": "what is happening now?"})
        answer = session.until(lambda m: m["type"] == "response.done")
        assert answer["id"] == "q1" and answer["grounded"] is True and answer["text"]
        assert any(m["id"] == "q1" for m in session.of_type("response.delta"))
    stored = client.get("/v1/streams/cuts-cam/events", headers=auth()).json()["events"]
    stored_ids = {event["id"] for event in stored}
    assert {c["id"] for c in answer["citations"]} <= stored_ids
    assert boundary["event_id"] in stored_ids
    assert all(c["stream"] == "cuts-cam" for c in answer["citations"])


def test_bad_messages_get_errors_and_the_session_goes_on(client: Any) -> None:
    good = jpeg(cut_frames()[0])
    with connect(client, "messy-cam") as ws:
        session = Session(ws)
        ws.send_bytes(binary_frame(0.0, good[: len(good) // 2]))  # truncated JPEG
        error = session.until(lambda m: m["type"] == "error")
        assert error["code"] == "bad_frame"
        ws.send_bytes(b"\x00\x01")  # no room for the timestamp
        assert session.until(lambda m: m["type"] == "error")["code"] == "bad_frame"
        ws.send_text("{not json")
        assert session.until(lambda m: m["type"] == "error")["code"] == "bad_message"
        ws.send_json({"type": "teleport"})
        assert session.until(lambda m: m["type"] == "error")["code"] == "bad_message"
        ws.send_json({"type": "query", "id": "q9"})  # no text
        error = session.until(lambda m: m["type"] == "error")
        assert error["code"] == "bad_message" and error["id"] == "q9"
        # The truncated frame used the t=0 tick (it is decoded, and found bad, after queueing).
        ws.send_json({"type": "frame", "t": 0.5, "data": base64.b64encode(good).decode()})
        status = session.until(lambda m: m["type"] == "status" and m["frames_processed"] == 1)
        assert status["frames_bad"] == 1
        ws.send_bytes(binary_frame(0.6, good))  # same 0.5 s tick at 2 fps: skipped
        status = session.until(lambda m: m["type"] == "status" and m["frames_skipped"] == 1)
        assert status["frames_processed"] == 1


def test_frame_and_message_size_limits(client: Any) -> None:
    with connect(client, "big-cam") as ws:
        ws.receive_json()
        too_big_frame = b"\xff\xd8\xff" + bytes(LIMITS["max_frame_bytes"])
        ws.send_bytes(binary_frame(0.0, too_big_frame))
        error, _ = receive_until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "frame_too_large"
        ws.send_json({"type": "ping"})
        receive_until(ws, lambda m: m["type"] == "pong")
        ws.send_bytes(bytes(MAX_MESSAGE + 1))
        with pytest.raises(WebSocketDisconnect) as closed:
            receive_until(ws, lambda m: False)
        assert closed.value.code == 1009


def test_full_queue_drops_the_oldest_frame_and_says_so(client: Any, app: Any) -> None:
    clip = cut_frames()
    count = 30
    engine = app.state.engine
    batch = engine.settings.encoder.batch_size  # frames the encoder may hold while blocked
    at_least = count - LIMITS["frame_queue"] - batch
    with connect(client, "busy-cam") as ws:
        ws.receive_json()
        with engine.encoder.lock:  # the encoder is busy: frames pile up in the session queue
            for i in range(count):
                ws.send_bytes(binary_frame(i / 2.0, jpeg(clip[i % len(clip)])))
            first, _ = receive_until(ws, lambda m: m["type"] == "status" and m["frames_dropped"])
            assert first["queue_depth"] <= LIMITS["frame_queue"]
            receive_until(ws, lambda m: m["type"] == "status" and m["frames_dropped"] >= at_least)
        final, _ = receive_until(
            ws,
            lambda m: (
                m["type"] == "status"
                and m["frames_dropped"] + m["frames_processed"] == count
                and m["queue_depth"] == 0
            ),
        )
        assert final["frames_received"] == count and final["frames_dropped"] >= at_least
        assert final["lag_p95_s"] > 0


def test_auth_is_checked_before_accept(client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect("/v1/streams/cam/ws", headers=headers),
        ):
            pass
        assert denied.value.status_code == 401
        assert denied.value.json()["error"]["code"] == "unauthorized"
    # Browsers cannot set headers: the key rides in the subprotocol list.
    protocols = ["evs.v1", "evs.key.key-b"]
    with client.websocket_connect("/v1/streams/browser-cam/ws", subprotocols=protocols) as ws:
        assert ws.accepted_subprotocol == "evs.v1"
        assert ws.receive_json()["type"] == "session.ready"
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/v1/streams/bad%20id/ws", headers=auth()),
    ):
        pass
    assert denied.value.status_code == 400


def test_other_keys_streams_are_invisible(client: Any) -> None:
    with connect(client, "private-cam") as ws:
        ws.receive_json()
        ws.send_bytes(binary_frame(0.0, jpeg(cut_frames()[0])))
        receive_until(ws, lambda m: m["type"] == "status" and m["frames_processed"] == 1)
    deadline = time.monotonic() + 10
    while not client.get("/v1/streams/private-cam/events", headers=auth()).json()["events"]:
        assert time.monotonic() < deadline, "the flushed event was never stored"
        time.sleep(0.05)
    other = client.get("/v1/streams/private-cam", headers=auth("key-b"))
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert client.get("/v1/streams/private-cam/events", headers=auth("key-b")).status_code == 404
    with connect(client, "private-cam", key="key-b") as ws:  # key-b gets its own namespace
        ready = ws.receive_json()
        assert ready["events_in_memory"] == 0 and ready["resumed"] is False
    with connect(client, "private-cam") as ws:  # resume: false starts the stream over
        assert ws.receive_json()["events_in_memory"] == 1
        ws.send_json({"type": "session.config", "resume": False})
        ready, _ = receive_until(ws, lambda m: m["type"] == "session.ready")
        assert ready["resumed"] is False and ready["events_in_memory"] == 0
    assert client.get("/v1/streams/private-cam/events", headers=auth()).json()["events"] == []


def test_reconnect_resumes_the_timeline(client: Any) -> None:
    before = client.get("/v1/streams/cuts-cam/events", headers=auth()).json()["events"]
    assert before, "runs after the cuts test"
    last_end = max(event["end"] for event in before)
    with connect(client, "cuts-cam") as ws:
        session = Session(ws)
        ready = session.until(lambda m: m["type"] == "session.ready")
        assert ready["resumed"] is True and ready["events_in_memory"] == len(before)
        ws.send_json({"type": "session.config", "events": EVENTS})
        session.until(lambda m: m["type"] == "session.ready")
        session.send_frames(cut_frames()[:9])  # the client's clock starts at 0 again
    deadline = time.monotonic() + 10
    while True:
        after = client.get("/v1/streams/cuts-cam/events", headers=auth()).json()["events"]
        new = [event for event in after if event["id"] not in {e["id"] for e in before}]
        if new or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert new and min(event["start"] for event in new) >= last_end


def test_too_many_sessions_are_refused_before_accept(client: Any) -> None:
    with contextlib.ExitStack() as stack:
        opened = 0
        with pytest.raises(WebSocketDenialResponse) as denied:
            for i in range(LIMITS["max_sessions"] + 1):
                ws = stack.enter_context(connect(client, f"crowd-{i}"))
                ws.receive_json()
                opened += 1
        assert denied.value.status_code == 429
        assert denied.value.json()["error"]["code"] == "too_many_sessions"
        assert opened <= LIMITS["max_sessions"]


def test_input_end_closes_the_open_event_before_a_question(client: Any) -> None:
    frames = cut_frames()
    with connect(client, "end-cam") as ws:
        session = Session(ws)
        session.until(lambda m: m["type"] == "session.ready")
        ws.send_json({"type": "session.config", "events": EVENTS, "generate": False})
        session.until(lambda m: m["type"] == "session.ready")
        session.send_frames(frames)
        last_t = (len(frames) - 1) / 2.0
        # the last shot is still open: "now" already sees it, unsaved and uncited
        ws.send_json({"type": "query", "id": "now", "text": "what is happening now?"})
        now = session.until(lambda m: m["type"] == "response.done" and m["id"] == "now")
        assert "still going on" in now["text"]
        assert all(c["id"] >= 0 for c in now["citations"])
        before = client.get("/v1/streams/end-cam/events", headers=auth()).json()["events"]
        assert max((e["end"] for e in before), default=0.0) < last_t
        ws.send_json({"type": "input.end", "id": "e1"})
        ended = session.until(lambda m: m["type"] == "input.ended")
        assert ended == {"type": "input.ended", "id": "e1", "events": 1}
        after = client.get("/v1/streams/end-cam/events", headers=auth()).json()["events"]
        assert len(after) == len(before) + 1 and after[-1]["end"] >= last_t - 0.01
        ws.send_json({"type": "query", "id": "q", "text": "what happened?"})
        answer = session.until(lambda m: m["type"] == "response.done" and m["id"] == "q")
        assert answer["intent"] == "summary" and "nothing" not in answer["text"].lower()
        assert {c["id"] for c in answer["citations"]} == {e["id"] for e in after}
        ws.send_json({"type": "input.end"})  # nothing open now: still answered
        assert session.until(lambda m: m["type"] == "input.ended")["events"] == 0
