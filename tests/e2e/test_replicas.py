"""Two real ``evs serve`` replicas on one real PostgreSQL database.

Eight MJPEG cameras are pulled (``POST /v1/streams`` with a source, alternately through each
replica: the pull sources spread four and four), and a ninth stream is fed by a WebSocket
client on replica A. Every stream's events can be listed and searched, and a question answered,
on *either* replica. Then A is killed with SIGKILL mid-ingest:

- no acknowledged event is lost: every event either replica had listed (committed) and every
  ``event.boundary`` the WebSocket client received is still stored;
- A's pull sources resume on B (their leases are B's, and new events arrive), and the
  WebSocket client reconnects to B and resumes its stream (``session.ready`` with ``resumed``);
- printed: commit on A -> found by a search on B (the WebSocket client's boundaries), and the
  takeover time (kill -> every stream of A has new events through B).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from replica_support import (
    WS_STREAM,
    Replica,
    VisibilityProbe,
    WsClient,
    cameras,
    http,
    postgres_database,
    running_replicas,
    until,
)

pytest.importorskip("psycopg", reason="psycopg is not installed")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PULLS = 8


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Replica]]:
    with postgres_database() as url, running_replicas(tmp_path, url) as started:
        yield started


def test_two_replicas_share_streams_and_survive_kill9(replicas: list[Replica]) -> None:
    a, b = replicas
    cams = cameras(PULLS)
    client = WsClient()
    feeder = threading.Thread(target=client.run, args=([a.url, b.url],), daemon=True)
    try:
        names = [f"cam{i}" for i in range(PULLS)]
        for i, (name, cam) in enumerate(zip(names, cams, strict=True)):
            via = (a, b)[i % 2]
            body = {"id": name, "source": {"url": cam.url, "fps": 2}}
            status, reply = http(f"{via.url}/v1/streams", method="POST", body=body)
            assert status == 201, (status, reply)
        feeder.start()
        assert client.connected.wait(30)

        # the pulls spread over both replicas, and each replica lists every stream
        every = [*names, WS_STREAM]

        def all_have_events() -> dict[str, Any] | None:
            seen = b.streams()
            ok = all(seen.get(s, {}).get("events", 0) >= 2 for s in every)
            return seen if ok else None

        seen = until(all_have_events, 180, "events in all nine streams")
        holders = {s: seen[s]["replica"] for s in every}
        assert sorted(holders[s] for s in names) == ["a"] * 4 + ["b"] * 4, holders
        assert holders[WS_STREAM] == "a"
        assert set(a.streams()) == set(seen)  # the same list through either replica

        # search and questions on either replica see every stream
        for replica in (a, b):
            for stream in every:
                status, found = http(f"{replica.url}/v1/streams/{stream}/events?q=a+photo")
                assert status == 200 and found["events"], (replica.name, stream, found)
                assert all(e["stream"] == stream for e in found["events"])
            for stream in (names[0], names[1], WS_STREAM):  # one pulled by each, and the WS one
                body = {"text": "what happened?", "stream": stream}
                status, answer = http(f"{replica.url}/v1/query", method="POST", body=body)
                assert status == 200 and answer["citations"], (replica.name, stream, answer)
                assert {c["stream"] for c in answer["citations"]} == {stream}

        # an event acknowledged by A (event.boundary to its WebSocket client) is found by a
        # search on B soon after (each replica's caches follow the shared change sequence)
        probe = VisibilityProbe(client, lambda: [a, b])
        until(lambda: len(probe.delays) >= 5, 120, "five events of A found on B", step=0.5)
        probe.stop()
        delays = sorted(probe.delays)
        assert probe.missed == 0, f"{probe.missed} events of A not found on B within 10 s"

        # kill -9 A mid-ingest
        acked: dict[str, set[int]] = {s: b.event_ids(s) | a.event_ids(s) for s in every}
        ws_acked = client.boundaries()
        on_a = [s for s in every if holders[s] == "a"]
        a.kill9()
        killed_at = time.monotonic()

        after: dict[str, set[int]] = {}

        def resumed_on_b() -> bool:
            current = b.streams()
            for stream in on_a:
                if current.get(stream, {}).get("replica") != "b":
                    return False
                after[stream] = b.event_ids(stream)
                if not after[stream] - acked[stream]:  # a new event, stored through B
                    return False
            return True

        until(resumed_on_b, 90, "A's streams resumed on B", step=0.1)
        takeover_s = time.monotonic() - killed_at
        for stream in every:
            stored = b.event_ids(stream)
            lost = acked[stream] - stored
            assert not lost, f"{stream}: acknowledged events lost: {sorted(lost)}"
        stored_ws = b.event_ids(WS_STREAM)
        assert set(ws_acked) <= stored_ws, sorted(set(ws_acked) - stored_ws)
        ready = [m for m in client.messages if m["type"] == "session.ready"]
        assert len(ready) >= 2 and ready[-1]["resumed"] is True, ready
        print(
            f"\nacknowledged on A -> found by a search on B: {len(delays)} events, "
            f"median {delays[len(delays) // 2]:.3f} s, max {delays[-1]:.3f} s"
            f"\ntakeover after kill -9: {takeover_s:.2f} s for {len(on_a)} streams; "
            f"acknowledged before the kill: {sum(map(len, acked.values()))} events, lost 0"
        )
    finally:
        client.stop()
        for cam in cams:
            cam.stop()
