"""Alerts and upload jobs with two real ``evs serve`` replicas on one real PostgreSQL database.

Alerts: one replica holds the ``alerts`` role (it evaluates every watch and sends every
delivery). A watch is created through it (A); frames are streamed to the other replica (B). Each
event B stores is alerted once and delivered once to a real webhook receiver (signature
checked, idempotency keys counted), with a keyframe link that works through either replica.
Then A is killed with SIGKILL: B takes the role over within seconds, the events it stores
afterwards are alerted too, and no alert is raised or delivered twice.

Jobs: an upload sent to one replica is readable, with its final state, through the other, and
through neither with another key.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from alert_support import Receiver
from replica_support import (
    AUTH,
    KEYS,
    Replica,
    alert_log,
    all_alerted_and_delivered,
    http,
    postgres_database,
    role_holder,
    running_replicas,
    stream_events,
    until,
)

from eventvstream.testdata.server import http_json

pytest.importorskip("psycopg", reason="psycopg is not installed")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STREAM = "door"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[str, list[Replica]]]:
    """One PostgreSQL database and two replicas for the module (starting them is the slow
    part). The job test runs first; the alert test ends by killing a replica."""
    directory = tmp_path_factory.mktemp("replicas")
    with postgres_database() as url, running_replicas(directory, url) as replicas:
        yield url, replicas


def all_alerted_and_delivered_to(replica: Replica, receiver: Receiver) -> list[dict[str, Any]]:
    """Once every stored event has its alert, delivered (as the alert log says and as the
    receiver saw it), the alerts; else an empty list."""
    found = all_alerted_and_delivered(replica, STREAM)
    with receiver.lock:
        keys = set(receiver.unique)
    return found if {a["idempotency_key"] for a in found} <= keys else []


def upload(replica: Replica, stream: str, data: bytes) -> str:
    headers = dict(AUTH) | {"Content-Type": "video/mp4"}
    request = urllib.request.Request(
        f"{replica.url}/v1/streams/{stream}/uploads", data=data, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202
        return json.loads(response.read())["job_id"]


def test_a_job_started_on_one_replica_is_read_on_the_other(cluster, tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    from eventvstream import testdata

    clip = tmp_path / "clip.mp4"
    testdata.render_clip(testdata.cuts_clip(11, n_shots=3, shot_s=(2.5, 3.0)), clip, 128, 72, 5.0)
    _, (a, b) = cluster
    status, _ = http(f"{a.url}/v1/streams", method="POST", body={"id": "clip"})
    assert status == 201
    job_id = upload(a, "clip", clip.read_bytes())
    seen_on_b: set[str] = set()

    def done_on_b() -> dict[str, Any] | None:
        status, job = http(f"{b.url}/v1/jobs/{job_id}")
        assert status == 200, (status, job)
        seen_on_b.add(job["state"])
        return job if job["state"] in ("done", "failed") else None

    job = until(done_on_b, 120, "the job done, read through B")
    assert job["state"] == "done" and job["events"] >= 2 and job["progress"] == 1.0, job
    assert http(f"{a.url}/v1/jobs/{job_id}")[1] == job  # the same answer through A
    assert len(b.event_ids("clip")) == job["events"]
    other = {"Authorization": f"Bearer {KEYS[1]}"}
    for replica in (a, b):  # another key's job answers like a missing one
        status, body = http_json(f"{replica.url}/v1/jobs/{job_id}", headers=other)
        assert status == 404 and '"not_found"' in body, (replica.name, status, body)
    print(f"\njob states read through B: {sorted(seen_on_b)}")


def test_alerts_once_across_replicas_and_a_takeover(cluster) -> None:
    receiver = Receiver()
    url, replicas = cluster
    names = {r.name: r for r in replicas}
    holder = until(lambda: role_holder(url), 30, "a replica holding the alert role")
    a = names[holder]  # evaluates and delivers
    b = next(r for r in replicas if r is not a)
    try:
        watch = {"stream": STREAM, "text": "anything", "min_duration_s": 0.1,
                 "cooldown_s": 0, "webhook": {"url": receiver.url}}  # fmt: skip
        status, created = http(f"{a.url}/v1/watches", method="POST", body=watch)
        assert status == 201, created
        receiver.secret = created["webhook"]["secret"]
        status, listed = http(f"{b.url}/v1/watches")  # a watch made on A is B's too
        assert status == 200 and [w["id"] for w in listed["watches"]] == [created["id"]]
        time.sleep(1.0)  # B reloads its watch rules within a poll (it keeps keyframes)

        announced = stream_events(b, STREAM, seed=21)
        first = until(lambda: all_alerted_and_delivered_to(b, receiver), 60, "alerts of B")
        assert set(announced) <= {x["event"]["id"] for x in first}
        assert role_holder(url) == a.name  # evaluated on A: B stored the events
        assert [x["idempotency_key"] for x in alert_log(a)][: len(first)] == [
            x["idempotency_key"] for x in first
        ]  # the same log through either replica
        # the keyframe B kept is linked from the alert and served through A too
        link = first[0]["event"]["keyframe_url"]
        assert link, first[0]
        request = urllib.request.Request(a.url + link, headers=dict(AUTH))
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["content-type"] == "image/jpeg"
            assert response.read(3) == b"\xff\xd8\xff"

        a.kill9()
        killed = time.monotonic()
        until(lambda: role_holder(url) == b.name, 30, "B holding the alert role", step=0.05)
        takeover_s = time.monotonic() - killed
        later = stream_events(b, STREAM, seed=22)
        everything = until(
            lambda: all_alerted_and_delivered_to(b, receiver), 60, "alerts after the takeover"
        )
        assert set(later) <= {x["event"]["id"] for x in everything}
        assert len(everything) > len(first)
        time.sleep(1.0)  # a late duplicate would have arrived by now
        pairs = [(x["watch"]["id"], x["event"]["id"]) for x in alert_log(b)]
        assert len(pairs) == len(set(pairs))  # raised once per (watch, event)
        assert receiver.duplicates == 0 and receiver.bad_signatures == 0
        assert len(receiver.unique) == len(pairs)  # delivered once each
        print(
            f"\nalert role taken over {takeover_s:.2f} s after kill -9; "
            f"{len(first)} alerts before, {len(pairs) - len(first)} after, 0 duplicates"
        )
    finally:
        receiver.close()
