"""MQTT alerts from two alert engines on one real PostgreSQL database (in one process, as
``test_alerts_replicas.py`` runs them) and Debian's real mosquitto broker.

The case ``tests/e2e/test_replica_mqtt.py`` cannot make with kill -9: the role holder loses the
role *while it is still running* (its liveness lock dropped: a database restart, a network cut)
and still has its broker connection when the other replica takes over and connects. Whether the
replicas share ``alerts.mqtt.client_id`` (the default: the broker keeps one connection) or each
has its own, every alert is published exactly once, the deposed holder stops publishing, and
the broker's retained availability ends as ``online`` (the new holder's), not as the deposed
one's ``stopped``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_support import (
    FAST,
    Mosquitto,
    Side,
    Subscriber,
    free_port,
    mosquitto_available,
    until,
)

from eventvstream.config import AlertSettings, MqttSettings
from eventvstream.serving.alerts.spec import WatchCreate

pytestmark = pytest.mark.skipif(
    not mosquitto_available(), reason="mosquitto is not installed (apt-get install mosquitto)"
)
AVAILABLE = "evs/available"


def settings(port: int, client_id: str) -> AlertSettings:
    mqtt = MqttSettings(host="127.0.0.1", port=port, topic_prefix="evs", client_id=client_id)
    return AlertSettings(mqtt=mqtt, **FAST)


def alert_ids(sub: Subscriber, topic: str = "evs/alerts") -> Counter[int]:
    return Counter(json.loads(m)["alert_id"] for m in sub.on(topic))


@pytest.mark.parametrize("shared_id", [True, False], ids=["shared-client-id", "own-client-id"])
def test_a_deposed_holder_hands_mqtt_over_cleanly(
    shared_id: bool, postgres_url: str, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path)
    sub = Subscriber(broker.port, "evs")
    sides = []
    try:
        for name in ("a", "b"):
            client_id = "evs" if shared_id else f"evs-{name}"
            sides.append(Side(postgres_url, tmp_path, name, settings(broker.port, client_id)))
        a, b = sides
        a.role.tick(draining=False)
        b.role.tick(draining=False)
        until(lambda: a.engine.leading and a.engine.mqtt.connected.is_set())
        assert b.engine.mqtt is None  # no broker connection without the role
        body = WatchCreate(stream="door", text="any", min_duration_s=1.0, cooldown_s=0)
        b.engine.watches.create("k1", body)  # MQTT is on by default with a broker
        until(lambda: "k1" in a.engine.watches.owners())
        first = [b.store(0.0, 4.0), b.store(10.0, 14.0)]
        until(lambda: len(alert_ids(sub)) == 2)
        until(lambda: not a.engine.pending()["mqtt"])

        a.lock.close()  # A is cut off from the database but keeps running (and its broker link)
        until(lambda: b.role.tick(draining=False) or b.role.held())
        assert a.role.held()  # by its own clock, until its next heartbeat
        until(lambda: b.engine.leading and b.engine.mqtt.connected.is_set())
        a.role.tick(draining=False)  # A's next heartbeat: the role is B's
        until(lambda: not a.engine.leading)
        later = [a.store(20.0, 24.0), b.store(30.0, 34.0)]
        until(lambda: len(alert_ids(sub)) == 4)
        time.sleep(3.0)  # a duplicate, or a reconnect of the deposed client, would show by now

        records = b.engine.outbox.alerts("k1")
        assert {r.event_id for r in records} == set(first + later)
        expected = Counter(r.id for r in records)
        assert alert_ids(sub) == expected  # each exactly once
        assert alert_ids(sub, "evs/door/alerts") == expected
        assert not b.engine.pending()["mqtt"]
        assert sub.on(AVAILABLE)[-1] == b"online", sub.on(AVAILABLE)
        late = Subscriber(broker.port, "evs")
        try:
            assert late.wait(AVAILABLE) == [b"online"]  # the retained state is B's
        finally:
            late.close()
    finally:
        for side in sides:
            side.close()
        sub.close()
        broker.stop()


def test_alerts_pending_when_the_holder_dies_are_published_once_by_the_next(
    postgres_url: str, tmp_path: Path
) -> None:
    """The broker is down while A raises alerts (their MQTT deliveries wait in the shared
    outbox); A dies; B takes the role, the broker comes back: B publishes each of them once."""
    port = free_port()
    sides = [Side(postgres_url, tmp_path, n, settings(port, "evs")) for n in ("a", "b")]
    broker = sub = None
    try:
        a, b = sides
        a.role.tick(draining=False)
        b.role.tick(draining=False)
        until(lambda: a.engine.leading)
        body = WatchCreate(stream="door", text="any", min_duration_s=1.0, cooldown_s=0)
        a.engine.watches.create("k1", body)
        events = [b.store(0.0, 4.0), b.store(10.0, 14.0)]
        until(lambda: a.engine.pending()["mqtt"] == 2)  # raised, not published: no broker

        a.lock.close()  # A dies: its liveness lock is gone, the role is free at once
        until(lambda: b.role.tick(draining=False) or b.role.held())
        a.role.tick(draining=False)  # (a dead A publishes nothing more: make this one stop)
        until(lambda: b.engine.leading and not a.engine.leading)
        broker = Mosquitto(tmp_path, port=port)
        sub = Subscriber(port, "evs")
        until(lambda: not b.engine.pending()["mqtt"], 40)  # paho's reconnect backoff <= 30 s
        time.sleep(1.0)
        records = b.engine.outbox.alerts("k1")
        assert {r.event_id for r in records} == set(events)
        assert alert_ids(sub) == Counter(r.id for r in records)  # each exactly once
    finally:
        for side in sides:
            side.close()
        if sub is not None:
            sub.close()
        if broker is not None:
            broker.stop()
