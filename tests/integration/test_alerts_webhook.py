"""Watches -> alerts -> webhooks, on a real memory bank, the packaged MiniLM text embedder and a
real HTTP receiver that refuses the first deliveries and checks every signature."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_support import LOCAL_RECEIVERS, Receiver, free_port, stored_event

from eventvstream.config import AlertSettings
from eventvstream.memory import MemoryBank
from eventvstream.memory.backends import open_backend
from eventvstream.serving.alerts.engine import AlertEngine
from eventvstream.serving.alerts.spec import WatchCreate

FAST = dict(webhook_backoff_s=0.05, webhook_backoff_max_s=0.2, **LOCAL_RECEIVERS)


@pytest.fixture(scope="module")
def embedder():
    from eventvstream.perception.text import load_text_embedder

    return load_text_embedder("packaged", "cpu")


def open_engine(memory, data: Path, embedder, **settings) -> tuple[MemoryBank, AlertEngine]:
    """A bank on ``memory``'s backend (``memory_settings``: each test runs on SQLite and on
    PostgreSQL) and an alert engine on it."""
    bank = MemoryBank(memory(data, checkpoint_every=10**9))
    return bank, AlertEngine(AlertSettings(**(FAST | settings)), bank, embedder)


def store(bank, embedder, start: float, description: str, *, stream="door", owner="k1") -> int:
    """What the server's ingest does: store the event, then its description and embedding."""
    stored = bank.add(stored_event(start, start + 4.0, "thing"), stream=stream, owner=owner)
    bank.set_text(stored.id, description, embedder.embed([description])[0])
    return stored.id


def watch(engine, url: str, text: str = "a bird", **kw) -> dict:
    body = WatchCreate(stream="door", text=text, webhook={"url": url}, **kw)
    return engine.watches.create("k1", body)


def test_fires_on_a_match_only_signed_retried_and_once(memory_settings, tmp_path, embedder):
    bank, engine = open_engine(memory_settings, tmp_path, embedder)
    receiver = Receiver(refuse_first=2)
    try:
        created = watch(engine, receiver.url)
        receiver.secret = created["webhook"]["secret"]
        assert len(receiver.secret) >= 32
        assert engine.watches.get("k1", created["id"])["webhook"] == {
            "url": receiver.url,
            "secret_set": True,
        }  # the secret is shown once, at creation
        bird = store(bank, embedder, 0.0, "a small bird perches on a branch")
        store(bank, embedder, 100.0, "a red car drives down the street")
        store(bank, embedder, 200.0, "a cat sleeps on a sofa", owner="k2")  # another key
        assert engine.settle()
        assert receiver.wait_for(1)
        time.sleep(0.5)  # anything else would have arrived by now
        assert len(receiver.unique) == 1 and receiver.duplicates == 0
        assert receiver.bad_signatures == 0
        assert len(receiver.requests) == 3  # two refusals, then delivered
        (delivered,) = receiver.unique.values()
        body = delivered["body"]
        assert body["type"] == "alert" and body["event"]["id"] == bird
        assert body["event"]["stream"] == "door" and body["event"]["start"] == 0.0
        assert body["why"]["score"] >= body["why"]["threshold"]
        assert body["why"]["verified"] is None and body["why"]["phase"] == "stored"
        keys = {r["headers"]["Idempotency-Key"] for r in receiver.requests}
        assert keys == {body["idempotency_key"]}  # the same key on every retry
        # the caption arrives: evaluated again, but a watch alerts on an event once
        bank.set_text(bird, "a sparrow", embedder.embed(["a sparrow"])[0], caption="a sparrow")
        assert engine.settle()
        time.sleep(0.3)
        assert len(receiver.requests) == 3
        status = engine.outbox.delivery_status(body["alert_id"])
        assert status[0]["status"] == "delivered" and status[0]["attempts"] == 3
    finally:
        engine.close()
        bank.close()
        receiver.close()


def test_a_tampered_or_unsigned_body_is_refused_by_the_receiver(
    memory_settings, tmp_path, embedder
):
    """The receiver's check is real: with the wrong secret every delivery is refused (401)
    and stays pending for retry."""
    bank, engine = open_engine(memory_settings, tmp_path, embedder)
    receiver = Receiver(secret="not-the-watch-secret-at-all")
    try:
        watch(engine, receiver.url)
        store(bank, embedder, 0.0, "a bird on the feeder")
        deadline = time.monotonic() + 10
        while receiver.bad_signatures < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiver.bad_signatures >= 2 and not receiver.unique
        assert engine.pending()["webhook"] == 1
    finally:
        engine.close()
        bank.close()
        receiver.close()


def test_outbox_survives_a_restart_with_the_receiver_down(memory_settings, tmp_path, embedder):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    bank, engine = open_engine(memory_settings, tmp_path, embedder)
    watch(engine, url)
    store(bank, embedder, 0.0, "a bird eats seeds")
    assert engine.settle()
    time.sleep(0.3)  # a few refused connections
    assert engine.pending()["webhook"] == 1
    engine.close()
    # while no engine runs, another matching event is stored (the server died after the
    # commit, before evaluating it): the next engine evaluates it from its cursor
    store(bank, embedder, 300.0, "two birds fly past")
    receiver = Receiver(port=port)
    engine = AlertEngine(AlertSettings(**FAST), bank, embedder)
    try:
        assert receiver.wait_for(2)
        time.sleep(0.3)
        assert len(receiver.unique) == 2 and receiver.duplicates == 0
        starts = sorted(d["body"]["event"]["start"] for d in receiver.unique.values())
        assert starts == [0.0, 300.0]
    finally:
        engine.close()
        bank.close()
        receiver.close()


def test_cooldown_and_duration_watch(memory_settings, tmp_path, embedder):
    bank, engine = open_engine(memory_settings, tmp_path, embedder)
    receiver = Receiver()
    try:
        watch(engine, receiver.url, cooldown_s=60)
        watch(engine, receiver.url, text="any event longer than 2 minutes")
        store(bank, embedder, 0.0, "a bird on a branch")
        store(bank, embedder, 10.0, "a bird hops along the branch")  # same scene: cooldown
        store(bank, embedder, 100.0, "a bird comes back")
        long = bank.add(stored_event(400.0, 550.0, "thing"), stream="door", owner="k1")
        assert engine.settle()
        assert receiver.wait_for(3)
        time.sleep(0.3)
        bodies = [d["body"] for d in receiver.unique.values()]
        semantic = sorted(
            b["event"]["start"] for b in bodies if b["why"]["condition"] == "semantic"
        )
        assert semantic == [0.0, 100.0]
        (duration,) = [b for b in bodies if b["why"]["condition"] == "duration"]
        assert duration["event"]["id"] == long.id and duration["why"]["score"] == 150.0
    finally:
        engine.close()
        bank.close()
        receiver.close()


def test_watch_rows_live_in_the_bank_database(memory_settings, tmp_path, embedder):
    bank, engine = open_engine(memory_settings, tmp_path, embedder)
    created = watch(engine, "http://127.0.0.1:9/x", name="feeder")
    engine.close()
    bank.close()
    backend = open_backend(memory_settings(tmp_path), tmp_path)  # the bank's own database
    with backend.reader() as conn:
        spec = json.loads(conn.execute("SELECT spec FROM watches").fetchone()[0])
    backend.close()
    assert spec["name"] == "feeder" and spec["text"] == "a bird"
    bank, engine = open_engine(memory_settings, tmp_path, embedder)
    try:
        assert [w["id"] for w in engine.watches.list("k1")] == [created["id"]]
        assert engine.watches.list("k2") == []
    finally:
        engine.close()
        bank.close()
