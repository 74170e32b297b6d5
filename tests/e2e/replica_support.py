"""Helpers for replicas on one PostgreSQL database: real ``evs serve`` processes (each with its
own data dir for its FAISS caches), MJPEG cameras with hard cuts to pull, and HTTP calls.

Shared by ``tests/e2e/test_replicas.py`` and ``scripts/bench_replicas.py`` (the 20-kill run)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from api_support import EVENTS, KEYS, cut_frames, jpeg  # noqa: E402
from servers.mjpeg import MjpegCamera  # noqa: E402

from eventvstream.testdata.server import http_json  # noqa: E402

REPO = HERE.parents[1]
READY_TIMEOUT_S = 240.0
AUTH = {"Authorization": f"Bearer {KEYS[0]}"}
WS_STREAM = "ws-cam"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    url: str, *, method: str = "GET", body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    """(status, JSON body) with the first test key; (0, None) when nobody answers."""
    return http_json(url, method=method, body=body, headers=dict(AUTH), timeout=timeout)


def replica_profile(
    path: Path,
    data_dir: Path,
    db_url: str,
    name: str,
    alerts: dict[str, Any] | None = None,
    **server: Any,
) -> Path:
    """The tiny profile on the shared database, events at most 4 s long (frequent commits);
    ``alerts`` and ``server`` add to (override) its ``alerts`` and ``server`` sections."""
    data = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    # No decoder: answers are templated from the stored events (grounded, with citations), and
    # two replicas' caption threads do not crowd a 2-core machine.
    data["language"] = {"backend": "none"}
    data["events"] = dict(data.get("events") or {}) | EVENTS | {"max_event_s": 4.0}
    data["memory"] = {"data_dir": str(data_dir), "backend": "postgres", "url": db_url}
    data["memory"]["consolidate"] = False  # every event its own row: new events are countable
    # Alerts on (one evaluator per database: the alerts role); webhooks may reach the test's
    # receiver on 127.0.0.1, as an operator would allow it.
    data["alerts"] = {"webhook_allow_hosts": ["127.0.0.1"], "webhook_backoff_s": 0.1}
    data["alerts"] |= alerts or {}
    data["server"] = {
        "api_keys": list(KEYS),
        "status_interval_s": 0.5,
        "replica_id": name,
        "max_sessions_per_key": 16,  # one replica may have to carry every stream...
        "max_pulls": 16,  # ...and every pull source (the quotas are counted per replica)
        "max_pulls_per_key": 16,
        "heartbeat_s": 0.5,
        "lease_ttl_s": 5.0,
    } | server
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL server (Debian's binaries) and a fresh database on it: its URL.
    Skips the test where PostgreSQL is not installed."""
    from eventvstream.testdata.postgres import INSTALL_HINT, PostgresServer, pg_bin

    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server.new_database()
    finally:
        server.stop()


@contextlib.contextmanager
def running_replicas(
    directory: Path,
    db_url: str,
    names: tuple[str, ...] = ("a", "b"),
    alerts: dict[str, Any] | None = None,
    **server: Any,
) -> Iterator[list[Replica]]:
    """``evs serve`` replicas on ``db_url``, ready; stopped (SIGTERM) on the way out."""
    started: list[Replica] = []
    try:
        for name in names:
            profile = replica_profile(
                directory / f"{name}.yaml",
                directory / f"data-{name}",
                db_url,
                name,
                alerts,
                **server,
            )
            started.append(Replica(name, profile, directory))
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


class Replica:
    """One ``evs serve`` replica; ``restart()`` starts a new process on the same profile."""

    def __init__(self, name: str, profile: Path, log_dir: Path) -> None:
        self.name, self.profile, self.log_dir = name, profile, log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        cmd = [
            sys.executable, "-m", "eventvstream.cli", "serve", "--config", str(self.profile),
            "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        started = time.monotonic()
        while http(f"{self.url}/readyz", timeout=5)[0] != 200:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{self.name} not ready in {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def kill9(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def streams(self) -> dict[str, dict[str, Any]]:
        status, body = http(f"{self.url}/v1/streams")
        if status != 200:
            raise RuntimeError(f"{self.name}: GET /v1/streams -> {status} {body}")
        return {s["id"]: s for s in body["streams"]}

    def event_ids(self, stream: str) -> set[int]:
        status, body = http(f"{self.url}/v1/streams/{stream}/events?limit=1000")
        if status != 200:
            raise RuntimeError(f"{self.name}: events of {stream} -> {status} {body}")
        return {e["id"] for e in body["events"]}


def cameras(count: int, fps: float = 4.0) -> list[MjpegCamera]:
    """``count`` MJPEG cameras, each looping its own clip of photos joined by hard cuts."""
    started = []
    for i in range(count):
        frames = [jpeg(f, quality=80) for f in cut_frames(n_shots=3, seed=100 + i)]
        started.append(MjpegCamera(frames, fps=fps).start())
    return started


def until(check: Any, timeout: float, what: str, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def role_holder(db_url: str, role: str = "alerts") -> str | None:
    """The replica holding ``role``, read from the database as any replica reads it."""
    from eventvstream.memory.postgres import PostgresBackend
    from eventvstream.memory.roles import RoleLeases

    backend = PostgresBackend(db_url, pool_size=2)
    try:
        return RoleLeases(backend, "test-observer", 5.0).holder(role)
    finally:
        backend.close()


def stream_events(replica: Replica, stream: str, seed: int) -> list[int]:
    """Frames with hard cuts over the WebSocket to ``replica``; the event ids it announced.
    Returns once the session has ended (closing it stores its open event too)."""
    from eventvstream.testdata.stream_client import StreamClient

    with StreamClient(replica.port, stream, key=KEYS[0]) as client:
        client.configure(events=EVENTS, generate=False)
        client.send_frames([jpeg(f) for f in cut_frames(5, seed=seed)], pause_s=0.05)
        assert client.wait_for(lambda c: len(c.boundaries) >= 2, timeout_s=90), client.messages
        announced = [m["event_id"] for m in client.boundaries]
    until(lambda: http(f"{replica.url}/v1/streams/{stream}")[1].get("live") is False, 30,
          "the session ended")  # fmt: skip
    return announced


def alert_log(replica: Replica) -> list[dict[str, Any]]:
    """``GET /v1/alerts``: every alert of the first key, oldest first, with its deliveries."""
    status, body = http(f"{replica.url}/v1/alerts?limit=1000")
    assert status == 200, (replica.name, status, body)
    return body["alerts"]


def watched_events(replica: Replica, stream: str, min_s: float = 0.1) -> set[int]:
    """The stream's events a watch with ``min_duration_s: min_s`` covers (longer than that)."""
    status, body = http(f"{replica.url}/v1/streams/{stream}/events?limit=1000")
    assert status == 200, (status, body)
    return {e["id"] for e in body["events"] if e["end"] - e["start"] > min_s}


def all_alerted_and_delivered(replica: Replica, stream: str) -> list[dict[str, Any]]:
    """The alert log once every watched event of ``stream`` has its alert and every delivery
    reads ``delivered`` (as the role holder recorded it); else an empty list."""
    found = alert_log(replica)
    if {a["event"]["id"] for a in found} != watched_events(replica, stream):
        return []
    if not all(d["status"] == "delivered" for a in found for d in a["deliveries"]):
        return []
    return found


class WsClient:
    """Feeds one stream frame by frame over WebSocket; records every message; reconnects (to
    the URL it is given) when its server dies."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.frames = [jpeg(f) for f in cut_frames(n_shots=6, seed=11)]
        self.t = 0.0
        self._stop = threading.Event()
        self.connected = threading.Event()
        # event id -> (when its first event.boundary arrived, the message)
        self.arrivals: dict[int, tuple[float, dict[str, Any]]] = {}

    def boundaries(self) -> dict[int, dict[str, Any]]:
        return {m["event_id"]: m for m in list(self.messages) if m["type"] == "event.boundary"}

    def run(self, urls: list[str]) -> None:
        from websockets.sync.client import connect

        i = 0
        while not self._stop.is_set():
            for url in urls:  # the first that accepts (a load balancer would pick one)
                try:
                    ws = connect(
                        f"{url.replace('http', 'ws')}/v1/streams/{WS_STREAM}/ws",
                        additional_headers=AUTH,
                        open_timeout=5,
                    )
                except Exception:
                    continue
                with ws:
                    try:
                        ws.send(json.dumps({"type": "session.config", "events": EVENTS}))
                        self.connected.set()
                        reader = threading.Thread(target=self._read, args=(ws,), daemon=True)
                        reader.start()
                        while not self._stop.is_set():
                            frame = self.frames[i % len(self.frames)]
                            ws.send(struct.pack(">d", self.t) + frame)
                            i, self.t = i + 1, self.t + 0.5
                            time.sleep(0.25)
                    except Exception:
                        self.connected.clear()
                break
            time.sleep(0.5)

    def _read(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message["type"] == "event.boundary":
                    self.arrivals.setdefault(message["event_id"], (time.monotonic(), message))

    def stop(self) -> None:
        self._stop.set()


class VisibilityProbe:
    """For each boundary the WebSocket client gets, poll the other replica until it finds the
    event; the delays (commit -> visible elsewhere; an upper bound: the message leaves after
    the commit)."""

    def __init__(self, client: WsClient, ready: Any) -> None:
        self.client, self.ready = client, ready
        self.delays: list[float] = []
        self.missed = 0
        self._seen: set[int] = set()
        self._since = time.monotonic()  # boundaries that arrived before the probe: not timed
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _other(self, message: dict[str, Any]) -> Replica | None:
        alive = self.ready()
        holder = http(f"{alive[0].url}/v1/streams/{WS_STREAM}", timeout=5)[1] if alive else None
        name = holder.get("replica") if isinstance(holder, dict) else None
        others = [r for r in alive if r.name != name]
        return others[0] if others and name else None

    def _run(self) -> None:
        while not self._stop.is_set():
            for event_id, (arrived, message) in list(self.client.arrivals.items()):
                if event_id in self._seen:
                    continue
                self._seen.add(event_id)
                if arrived < self._since:
                    continue
                other = self._other(message)
                if other is None:
                    continue
                span = f"t0={message['start'] - 0.01}&t1={message['end'] + 0.01}"
                url = f"{other.url}/v1/streams/{WS_STREAM}/events?q=photo&{span}&limit=50"
                deadline = arrived + 10.0
                while time.monotonic() < deadline:
                    status, body = http(url, timeout=5)
                    if status == 200 and any(e["id"] == event_id for e in body["events"]):
                        self.delays.append(time.monotonic() - arrived)
                        break
                    time.sleep(0.02)
                else:
                    self.missed += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
