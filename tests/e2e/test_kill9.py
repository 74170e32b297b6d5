"""kill -9 a real `evs serve` mid-stream: no event the server announced is lost.

The server sends ``event.boundary`` only after the event's write to the memory bank has
committed (``Engine.store_event``: ``bank.add`` — SQLite WAL with ``synchronous=FULL`` — then
``set_text``, then the message), so every boundary a client received is an acknowledged,
durable event. Three rounds on one data dir and one stream, each killed at a different moment:

1. the instant the first ``event.boundary`` arrives (the writer is busy with the next events);
2. part-way through sending the frames (frames queued, an event open);
3. when a caption starts streaming after a few events (a caption job in flight).

After each kill the server is started again on the same data dir and ``GET
/v1/streams/{id}/events`` must hold every acknowledged event with the span it was announced
with. One allowance, exact by construction: the writer stores one event at a time and announces
it before storing the next, so at most the *last* write can be committed but unannounced; when
that write merged into the stream's last event, that event's end may be later than announced.
The stream resumes across restarts (``session.ready`` says ``resumed`` with the stored count),
and the last server answers ``POST /v1/query`` citing stored events.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import EVENTS, KEYS, cut_frames, jpeg, write_profile

from eventvstream.testdata.server import ServerProcess, ServerStartError
from eventvstream.testdata.stream_client import StreamClient

pytestmark = pytest.mark.e2e

STREAM = "cam"
READY_TIMEOUT_S = 300.0  # a bound on failure only; a loaded 2-core box has needed > 120 s
FRAME_PAUSE_S = 0.1  # between frames (5x real time): the encoder keeps up, few frames drop
TOLERANCE_S = 2e-3  # boundary messages round times to 1 ms


def start_server(profile: Path, log_path: Path) -> ServerProcess:
    """One `evs serve` process on the shared profile (and so the shared data dir)."""
    try:
        return ServerProcess(profile, log_path, ready_timeout_s=READY_TIMEOUT_S)
    except ServerStartError as exc:
        pytest.fail(str(exc))


def stored_events(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = server.request(f"/v1/streams/{STREAM}/events?limit=1000", key=KEYS[0])
    assert status == 200, (status, body)
    return body["events"]


class StreamingClient:
    """Feeds frames to the stream; may ``kill -9`` the server the moment
    ``kill_when(message, client)`` is true for a message the reader thread receives."""

    def __init__(
        self,
        server: ServerProcess,
        kill_when: Callable[[dict[str, Any], StreamingClient], bool] | None = None,
    ) -> None:
        self.server = server
        self.kill_when = kill_when
        self.killed = threading.Event()
        self.client = StreamClient(server.port, STREAM, key=KEYS[0], on_message=self._check)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.client.messages

    @property
    def boundaries(self) -> list[dict[str, Any]]:
        return self.client.boundaries

    def kill(self) -> None:
        if not self.killed.is_set():
            self.killed.set()
            self.server.kill9()

    def _check(self, message: dict[str, Any], _client: StreamClient) -> None:
        if self.kill_when is not None and self.kill_when(message, self):
            self.kill()

    def stream(self, frames: tuple[Any, ...], kill_after: int | None = None) -> None:
        """Send config and frames; kill after ``kill_after`` frames (or stop once killed)."""

        def stop(i: int) -> bool:
            if kill_after is not None and i == kill_after:
                self.kill()
            return self.killed.is_set()

        try:
            self.client.configure(events=EVENTS)
            self.client.send_frames([jpeg(f) for f in frames], pause_s=FRAME_PAUSE_S, stop=stop)
        except Exception:
            if not self.killed.is_set():
                raise

    def finish(self, grace_s: float = 5.0) -> None:
        """Wait (bounded) for the reader's kill, then kill anyway; close the socket."""
        self.killed.wait(grace_s)
        self.kill()
        self.client.close()


def _first_boundary(message: dict[str, Any], client: StreamingClient) -> bool:
    return message["type"] == "event.boundary"


def _caption_after_two_events(message: dict[str, Any], client: StreamingClient) -> bool:
    return message["type"] == "event.caption.delta" and len(client.boundaries) >= 2


ROUNDS: list[tuple[str, Callable[..., bool] | None, float | None]] = [
    # (name, kill from the reader when, kill from the sender after this fraction of frames)
    ("on the first event.boundary", _first_boundary, None),
    ("part-way through the frames", None, 0.6),
    ("while a caption streams", _caption_after_two_events, None),
]


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def _check_acknowledged(
    acked: dict[int, dict[str, Any]], stored: list[dict[str, Any]], when: str
) -> None:
    by_id = {e["id"]: e for e in stored}
    starts = [e["start"] for e in stored]
    assert starts == sorted(starts) and len(set(by_id)) == len(stored), (when, stored)
    last_id = max(stored, key=lambda e: e["start"])["id"] if stored else None
    for event_id, message in sorted(acked.items()):
        assert event_id in by_id, f"{when}: acknowledged event {event_id} lost: {message}"
        event = by_id[event_id]
        assert abs(event["start"] - message["start"]) <= TOLERANCE_S, (when, message, event)
        if event_id == last_id:  # a merge into it may have committed unannounced
            assert event["end"] >= message["end"] - TOLERANCE_S, (when, message, event)
        else:
            assert abs(event["end"] - message["end"]) <= TOLERANCE_S, (when, message, event)


def test_kill9_loses_no_acknowledged_event(tmp_path: Path, servers: list[ServerProcess]) -> None:
    profile = write_profile(tmp_path / "profile.yaml", tmp_path / "data")
    servers.append(start_server(profile, tmp_path / "server-0.log"))
    acked: dict[int, dict[str, Any]] = {}  # event id -> its latest event.boundary
    stored_count = 0
    for round_no, (name, kill_when, kill_fraction) in enumerate(ROUNDS, start=1):
        server = servers[-1]
        frames = cut_frames(n_shots=6, seed=7 + round_no)
        client = StreamingClient(server, kill_when)
        kill_after = int(len(frames) * kill_fraction) if kill_fraction is not None else None
        client.stream(frames, kill_after)
        client.finish()
        assert server.proc.returncode == -signal.SIGKILL

        ready = [m for m in client.messages if m["type"] == "session.ready"]
        assert ready, f"round {round_no}: no session.ready before the kill"
        if round_no > 1:
            assert ready[0]["resumed"] is True, ready[0]
            assert ready[0]["events_in_memory"] == stored_count, (ready[0], stored_count)
        got = client.boundaries
        assert got, f"round {round_no} ({name}): no event.boundary before the kill"
        for message in got:  # in arrival order: the latest announcement of an id wins
            acked[message["event_id"]] = message

        servers.append(start_server(profile, tmp_path / f"server-{round_no}.log"))
        stored = stored_events(servers[-1])
        statuses = [m for m in client.messages if m["type"] == "status"]
        dropped = statuses[-1]["frames_dropped"] if statuses else None
        announced = [(m["event_id"], m["start"], m["end"], m["merged"]) for m in got]
        print(  # shown with -s, or under a failure
            f"round {round_no}, killed {name}: announced {announced}, frames dropped "
            f"{dropped}; {len(acked)} acknowledged events so far, {len(stored)} stored"
        )
        _check_acknowledged(acked, stored, f"after round {round_no} (killed {name})")
        stored_count = len(stored)

    assert len(acked) >= 3, acked
    last = servers[-1]
    stored = {e["id"]: e for e in stored_events(last)}
    for question in ("what is happening right now?", "what happened between 0 s and 600 s?"):
        status, answer = last.request(
            "/v1/query", "POST", {"text": question, "stream": STREAM}, key=KEYS[0]
        )
        assert status == 200, (status, answer)
        assert answer["grounded"] is True and answer["citations"], (question, answer)
        for cited in answer["citations"]:
            assert cited["id"] in stored, (question, cited, sorted(stored))
            event = stored[cited["id"]]
            assert cited["stream"] == STREAM, cited
            assert abs(cited["start"] - event["start"]) <= TOLERANCE_S, (cited, event)
            assert abs(cited["end"] - event["end"]) <= TOLERANCE_S, (cited, event)
