"""Alerts and event lifecycle on MQTT, through Debian's real mosquitto broker (started here on a
free port): Frigate-shaped topics, retained availability with a last will, QoS 1 acks, and an
alert that waits in the outbox while the broker is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_support import Mosquitto, Subscriber, free_port, mosquitto_available, stored_event

from eventvstream.config import AlertSettings, MemorySettings, MqttSettings
from eventvstream.memory import MemoryBank
from eventvstream.serving.alerts.engine import AlertEngine
from eventvstream.serving.alerts.spec import WatchCreate

pytestmark = pytest.mark.skipif(
    not mosquitto_available(), reason="mosquitto is not installed (apt-get install mosquitto)"
)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder():
    from eventvstream.perception.text import load_text_embedder

    return load_text_embedder("packaged", "cpu")


def settings(port: int, **kw) -> AlertSettings:
    return AlertSettings(mqtt=MqttSettings(host="127.0.0.1", port=port, topic_prefix="evs", **kw))


def store(bank, embedder, start: float, text: str, caption: str | None = None) -> int:
    stored = bank.add(stored_event(start, start + 4.0, "thing"), stream="door", owner="k1")
    bank.set_text(stored.id, text, embedder.embed([text])[0], caption=caption)
    return stored.id


def test_frigate_shaped_topics(tmp_path, embedder):
    broker = Mosquitto(tmp_path)
    sub = Subscriber(broker.port, "evs")
    bank = MemoryBank(MemorySettings(data_dir=tmp_path / "data"))
    engine = AlertEngine(settings(broker.port), bank, embedder)
    try:
        assert sub.wait("evs/available") == [b"online"]
        engine.watches.create("k1", WatchCreate(stream="door", text="a bird"))  # MQTT default
        event_id = store(bank, embedder, 0.0, "a bird on the fence")
        alerts = sub.wait("evs/alerts")
        assert len(alerts) == 1
        alert = json.loads(alerts[0])
        assert alert["type"] == "alert" and alert["event"]["id"] == event_id
        assert json.loads(sub.wait("evs/door/alerts")[0])["alert_id"] == alert["alert_id"]
        new = [json.loads(m) for m in sub.wait("evs/events")]
        assert new[0]["type"] == "new" and new[0]["before"] is None
        assert new[0]["after"]["id"] == event_id and new[0]["after"]["stream"] == "door"
        # the caption arrives: an "end" message with before/after, and the stream's caption
        bank.set_text(event_id, "a robin", embedder.embed(["a robin"])[0], caption="a robin")
        engine.wake()
        events = [json.loads(m) for m in sub.wait("evs/events", 2)]
        assert events[-1]["type"] == "end"
        assert (
            events[-1]["before"]["caption"] is None and events[-1]["after"]["caption"] == "a robin"
        )
        assert sub.wait("evs/door/caption") == [b"a robin"]
        assert engine.pending()["mqtt"] == 0  # the broker acknowledged the alert
    finally:
        engine.close()
        bank.close()
    assert sub.wait("evs/available", 2)[-1] == b"stopped"
    # retained state: a client connecting later still sees availability and the caption
    late = Subscriber(broker.port, "evs")
    try:
        assert late.wait("evs/door/caption") == [b"a robin"]
        assert late.wait("evs/available") == [b"stopped"]
    finally:
        late.close()
        sub.close()
        broker.stop()


def test_alert_waits_for_a_broker_that_is_down(tmp_path, embedder):
    port = free_port()
    bank = MemoryBank(MemorySettings(data_dir=tmp_path / "data"))
    engine = AlertEngine(settings(port), bank, embedder)
    broker = None
    try:
        engine.watches.create("k1", WatchCreate(stream="door", text="a bird"))
        store(bank, embedder, 0.0, "a bird lands")
        assert engine.settle()
        assert engine.pending()["mqtt"] == 1
        broker = Mosquitto(tmp_path, port=port)
        sub = Subscriber(port, "evs")
        # paho reconnects within its backoff (<= 30 s); then the outbox drains
        deadline = time.monotonic() + 40
        while engine.pending()["mqtt"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.pending()["mqtt"] == 0
        assert len(sub.wait("evs/alerts")) == 1
        sub.close()
    finally:
        engine.close()
        bank.close()
        if broker is not None:
            broker.stop()


def test_last_will_says_offline_when_the_server_dies(tmp_path):
    broker = Mosquitto(tmp_path)
    sub = Subscriber(broker.port, "evs")
    script = (
        "import sys, time\n"
        "from eventvstream.config import MqttSettings\n"
        "from eventvstream.serving.alerts.mqtt import MqttPublisher\n"
        "class NoOutbox:\n"
        "    def due(self, *a, **k): return []\n"
        "    def next_due(self, *a): return None\n"
        f"p = MqttPublisher(MqttSettings(host='127.0.0.1', port={broker.port}, keepalive_s=5),"
        " NoOutbox())\n"
        "p.connected.wait(10); print('up', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        assert sub.wait("evs/available") == [b"online"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # the broker notices the dead socket at once (closed TCP) and sends the will
        assert sub.wait("evs/available", 2, timeout=20)[-1] == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
        broker.stop()
