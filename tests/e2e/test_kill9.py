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

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import EVENTS, auth, binary_frame, cut_frames, jpeg, write_profile

pytestmark = pytest.mark.e2e

STREAM = "cam"
READY_TIMEOUT_S = 120.0
FRAME_PAUSE_S = 0.1  # between frames (5x real time): the encoder keeps up, few frames drop
TOLERANCE_S = 2e-3  # boundary messages round times to 1 ms


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(
    url: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    extra = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=(headers or {}) | extra, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError:
        return 0, None


class Server:
    """One `evs serve` process on the shared profile (and so the shared data dir)."""

    def __init__(self, profile: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [
            sys.executable, "-m", "eventvstream.cli", "serve", "--config", str(profile),
            "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _http(f"{self.url}/readyz")[0] != 200:
            if self.proc.poll() is not None:
                pytest.fail(f"evs serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"evs serve not ready in {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def events(self) -> list[dict[str, Any]]:
        status, body = _http(f"{self.url}/v1/streams/{STREAM}/events?limit=1000", headers=auth())
        assert status == 200, (status, body)
        return body["events"]


class StreamingClient:
    """A websockets client feeding frames; a reader thread records every message and may call
    ``kill`` the moment ``kill_when(message, client)`` is true."""

    def __init__(
        self,
        server: Server,
        kill_when: Callable[[dict[str, Any], StreamingClient], bool] | None = None,
    ) -> None:
        from websockets.sync.client import connect

        self.server = server
        self.kill_when = kill_when
        self.messages: list[dict[str, Any]] = []
        self.killed = threading.Event()
        url = f"ws://127.0.0.1:{server.port}/v1/streams/{STREAM}/ws"
        self._exit = contextlib.ExitStack()
        self.ws = self._exit.enter_context(
            connect(url, additional_headers=auth(), open_timeout=10, max_size=None)
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @property
    def boundaries(self) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if m["type"] == "event.boundary"]

    def kill(self) -> None:
        if not self.killed.is_set():
            self.killed.set()
            self.server.kill9()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                if self.kill_when is not None and self.kill_when(message, self):
                    self.kill()
        except Exception:  # the server died under the connection: expected
            pass

    def stream(self, frames: tuple[Any, ...], kill_after: int | None = None) -> None:
        """Send config and frames; kill after ``kill_after`` frames (or stop once killed)."""
        try:
            self.ws.send(json.dumps({"type": "session.config", "events": EVENTS}))
            for i, frame in enumerate(frames):
                if self.killed.is_set():
                    return
                if kill_after is not None and i == kill_after:
                    self.kill()
                    return
                self.ws.send(binary_frame(i / 2.0, jpeg(frame)))
                time.sleep(FRAME_PAUSE_S)
        except Exception:
            if not self.killed.is_set():
                raise

    def finish(self, grace_s: float = 5.0) -> None:
        """Wait (bounded) for the reader's kill, then kill anyway; close the socket."""
        self.killed.wait(grace_s)
        self.kill()
        self.reader.join(timeout=10)
        self._exit.close()


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
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
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


def test_kill9_loses_no_acknowledged_event(tmp_path: Path, servers: list[Server]) -> None:
    profile = write_profile(tmp_path / "profile.yaml", tmp_path / "data")
    servers.append(Server(profile, tmp_path / "server-0.log"))
    servers[-1].wait_ready()
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

        servers.append(Server(profile, tmp_path / f"server-{round_no}.log"))
        servers[-1].wait_ready()
        stored = servers[-1].events()
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
    stored = {e["id"]: e for e in last.events()}
    for question in ("what is happening right now?", "what happened between 0 s and 600 s?"):
        status, answer = _http(
            f"{last.url}/v1/query",
            method="POST",
            body={"text": question, "stream": STREAM},
            headers=auth(),
        )
        assert status == 200, (status, answer)
        assert answer["grounded"] is True and answer["citations"], (question, answer)
        for cited in answer["citations"]:
            assert cited["id"] in stored, (question, cited, sorted(stored))
            event = stored[cited["id"]]
            assert cited["stream"] == STREAM, cited
            assert abs(cited["start"] - event["start"]) <= TOLERANCE_S, (cited, event)
            assert abs(cited["end"] - event["end"]) <= TOLERANCE_S, (cited, event)
