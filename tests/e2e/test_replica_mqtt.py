"""MQTT alerts with two real ``evs serve`` replicas on one real PostgreSQL database and Debian's
real mosquitto broker (a real paho subscriber records every message on ``evs/#``).

Only the holder of the ``alerts`` role (A) connects to the broker and publishes: the other
replica (B) has no MQTT connection while it does not hold the role. A watch is created through
B, frames are streamed to B; every event B stores is alerted once by A and published once on
``evs/alerts`` and ``evs/door/alerts``, with the payload the alert log shows (docs/alerts.md),
and announced once as ``new`` on ``evs/events``. Then A is killed with SIGKILL: the broker
publishes A's last will (``offline``), B takes the role, connects and says ``online`` (the
retained state a late subscriber reads), and the events B stores afterwards are published once
each through B, none of the earlier alerts again.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from alert_support import Mosquitto, Subscriber, mosquitto_available
from replica_support import (
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

pytest.importorskip("psycopg", reason="psycopg is not installed")
pytest.importorskip("paho.mqtt", reason="paho-mqtt is not installed")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not mosquitto_available(), reason="mosquitto is not installed (apt-get install mosquitto)"
    ),
]

STREAM = "door"
PREFIX = "evs"
ALERT_KEYS = {"type", "alert_id", "idempotency_key", "watch", "stream", "event", "why", "created"}


def published(sub: Subscriber, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m) for m in sub.on(topic)]


def new_messages(sub: Subscriber) -> Counter[int]:
    """How often each event was announced as ``new`` on ``evs/events``."""
    found = published(sub, f"{PREFIX}/events")
    return Counter(m["after"]["id"] for m in found if m["type"] == "new")


def published_once(sub: Subscriber, log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages on ``evs/alerts`` once every alert of ``log`` is there; else []."""
    found = published(sub, f"{PREFIX}/alerts")
    want = {a["alert_id"] for a in log}
    return found if want <= {m["alert_id"] for m in found} else []


def check_exactly_once(sub: Subscriber, log: list[dict[str, Any]]) -> None:
    """Each alert of the log on both alert topics exactly once, as the log shows it; nothing
    else there."""
    expected = {a["alert_id"]: {k: v for k, v in a.items() if k != "deliveries"} for a in log}
    for topic in (f"{PREFIX}/alerts", f"{PREFIX}/{STREAM}/alerts"):
        messages = published(sub, topic)
        counts = Counter(m["alert_id"] for m in messages)
        assert counts == Counter(expected.keys()), (topic, counts)  # once each, no strangers
        for message in messages:
            assert set(message) == ALERT_KEYS, message
            assert message == expected[message["alert_id"]]  # the payload the log shows


def test_mqtt_alerts_once_across_replicas_and_a_kill9(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    sub = Subscriber(broker.port, PREFIX)
    mqtt = {
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX, "keepalive_s": 5}
    }
    try:
        with (
            postgres_database() as url,
            running_replicas(tmp_path, url, alerts=mqtt) as replicas,
        ):
            run(url, replicas, sub, broker.port)
    finally:
        sub.close()
        broker.stop()


def run(url: str, replicas: list[Replica], sub: Subscriber, port: int) -> None:
    names = {r.name: r for r in replicas}
    a = names[until(lambda: role_holder(url), 30, "a replica holding the alert role")]
    b = next(r for r in replicas if r is not a)
    available = f"{PREFIX}/available"
    until(lambda: sub.on(available), 30, "the role holder online on the broker")
    time.sleep(1.0)  # a second connection (the other replica's) would have said so by now
    assert sub.on(available) == [b"online"], "only the role holder connects to the broker"

    watch = {"stream": STREAM, "text": "anything", "min_duration_s": 0.1, "cooldown_s": 0}
    status, created = http(f"{b.url}/v1/watches", method="POST", body=watch)  # through B
    assert status == 201, created
    time.sleep(1.0)  # A reloads its watch rules within a poll

    announced = stream_events(b, STREAM, seed=31)  # to B, which does not evaluate
    first = until(lambda: all_alerted_and_delivered(b, STREAM), 60, "alerts of B's events")
    assert set(announced) <= {x["event"]["id"] for x in first}
    assert all([d["channel"] for d in x["deliveries"]] == ["mqtt"] for x in first), first
    assert role_holder(url) == a.name  # evaluated and published by A
    until(lambda: published_once(sub, first), 20, "the alerts on the broker")
    time.sleep(1.0)  # a duplicate would have arrived by now
    check_exactly_once(sub, first)
    assert all(new_messages(sub)[x["event"]["id"]] == 1 for x in first)  # one publisher

    a.kill9()
    killed = time.monotonic()
    until(lambda: role_holder(url) == b.name, 30, "B holding the alert role", step=0.05)
    until(lambda: sub.on(available)[-1:] == [b"online"] and len(sub.on(available)) >= 3, 30,
          "B online on the broker")  # fmt: skip
    takeover_s = time.monotonic() - killed
    # A's last will from the broker, then B's connection: the retained state is B's "online"
    assert sub.on(available) == [b"online", b"offline", b"online"]
    late = Subscriber(port, PREFIX)
    try:
        assert late.wait(available) == [b"online"]
    finally:
        late.close()

    later = stream_events(b, STREAM, seed=32)
    everything = until(
        lambda: all_alerted_and_delivered(b, STREAM), 60, "alerts after the takeover"
    )
    assert set(later) <= {x["event"]["id"] for x in everything}
    assert len(everything) > len(first)
    until(lambda: published_once(sub, everything), 20, "the later alerts on the broker")
    time.sleep(1.0)  # a late duplicate would have arrived by now
    check_exactly_once(sub, alert_log(b))  # the earlier ones not again, the later ones once
    # B went on from A's committed cursor: A's events are not announced as new again
    assert all(new_messages(sub)[x["event"]["id"]] == 1 for x in everything)
    pairs = [(x["watch"]["id"], x["event"]["id"]) for x in alert_log(b)]
    assert len(pairs) == len(set(pairs))  # raised once per (watch, event)
    print(
        f"\nMQTT: alert role on B, connected and online {takeover_s:.2f} s after kill -9 of A; "
        f"{len(first)} alerts published before, {len(pairs) - len(first)} after, 0 duplicates"
    )
