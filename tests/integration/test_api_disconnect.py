"""A client that leaves while its answer is generated frees the decoder at once (not after the
whole budget).

The WebSocket handler runs each question in the session's task group; when the client leaves,
the group is cancelled, the answer's async stream is closed, its cancel flag is set and the
model stops before its next token, releasing the decoder for everyone else. The control: the
same question answered in full over REST takes several times longer than the release does.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from api_support import EVENTS, auth, binary_frame, cut_frames, jpeg, receive_until, wait_ready
from fastapi.testclient import TestClient

from eventvstream.api import create_app
from eventvstream.config import load_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

QUESTION = "what is happening now?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("skimage")
    from api_support import LANGUAGE, TEST_HOSTS

    settings = load_settings(
        "tiny",
        # a long answer to walk away from, phrased by the decoder (as on the gpu/remote profiles)
        language=LANGUAGE | {"answer_max_tokens": 1500, "phrase_answers": True},
        memory={"data_dir": str(tmp_path_factory.mktemp("disconnect"))},
        server={
            "api_keys": ["key-a"],
            "status_interval_s": 0.2,
            "rate_per_s": 1000.0,
            "allowed_hosts": TEST_HOSTS,
        },
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def _decoder_busy(client: Any) -> bool:
    return client.app.state.engine.decoder._lock.locked()


def test_disconnect_mid_answer_releases_the_decoder(client: Any) -> None:
    with client.websocket_connect("/v1/streams/cam/ws", headers=auth("key-a")) as ws:
        ws.send_json({"type": "session.config", "events": EVENTS, "generate": False})
        receive_until(ws, lambda m: m["type"] == "session.ready")
        for i, frame in enumerate(cut_frames()):
            ws.send_bytes(binary_frame(i / 2.0, jpeg(frame)))
        receive_until(ws, lambda m: m["type"] == "event.boundary", timeout=60)
        ws.send_json({"type": "query", "id": "q1", "text": QUESTION})
        # Answers are checked before they are sent (language/grounding.py), so no delta arrives
        # while the decoder phrases: wait until it is at work, then leave.
        deadline = time.monotonic() + 60
        while not _decoder_busy(client) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _decoder_busy(client), "the decoder never started on the question"
    left = time.monotonic()
    while _decoder_busy(client) and time.monotonic() - left < 10:
        time.sleep(0.01)
    released_after = time.monotonic() - left
    # Control: the same question answered to the end (REST, the stored events of "cam").
    started = time.monotonic()
    full = client.post("/v1/query", json={"text": QUESTION, "stream": "cam"}, headers=auth("key-a"))
    full_s = time.monotonic() - started
    assert full.status_code == 200 and full.json()["citations"]
    print(f"released {released_after:.3f} s after leaving; full answer {full_s:.2f} s")
    assert released_after < 1.0, f"decoder still busy {released_after:.2f} s after the client left"
    assert full_s > 3 * released_after, (full_s, released_after)
