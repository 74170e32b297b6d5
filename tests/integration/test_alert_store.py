"""The alert tables on both backends (``memory_settings``: SQLite file and a real PostgreSQL
server): watches, the alert log and its outbox, migrated with the store's schema."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np

from eventvstream.memory import MemoryBank
from eventvstream.memory.alertdb import AlertDatabase
from eventvstream.memory.outbox import DELIVERED, FAILED, NewAlert, Outbox
from eventvstream.memory.schema import SCHEMA_VERSION
from eventvstream.memory.watches import WatchStore


def alert(watch: str, event_id: int, owner: str = "k1") -> NewAlert:
    return NewAlert(
        watch_id=watch,
        owner=owner,
        stream="door",
        event_id=event_id,
        payload={"event": {"start": 1.0, "end": 3.0}},
        deliveries=[("webhook", {"url": "http://127.0.0.1:9/x"}), ("mqtt", {"topic": "t"})],
    )


def test_watches_round_trip_with_their_vectors(memory_settings, tmp_path):
    with MemoryBank(memory_settings(tmp_path)) as bank:
        store = WatchStore(AlertDatabase(bank.store.backend))
        vector = np.arange(8, dtype=np.float32)
        store.create("w1", "k1", "door", {"text": "a bird"}, vector, "minilm")
        store.create("w2", "k2", None, {"text": "a car"}, None, None)
        got = store.get("k1", "w1")
        assert got is not None and got.spec == {"text": "a bird"} and got.vector_model == "minilm"
        assert np.array_equal(got.vector, vector)
        assert store.get("k2", "w1") is None  # owner-scoped
        assert store.update("k1", "w1", None, {"text": "two birds"}, None, None) is not None
        assert store.update("k2", "w1", None, {}, None, None) is None
        assert [w.id for w in store.all()] == ["w1", "w2"] and store.count("k1") == 1
        assert store.delete("k1", "w1") and not store.delete("k1", "w1")
        assert [w.id for w in store.of_owner("k1")] == []


def test_an_alert_is_recorded_once_with_its_deliveries_and_cursor(memory_settings, tmp_path):
    with MemoryBank(memory_settings(tmp_path)) as bank:
        db = AlertDatabase(bank.store.backend)
        outbox = Outbox(db)
        first = outbox.record([alert("w1", 7), alert("w2", 7)], cursor=11)
        assert [a.watch_id for a in first] == ["w1", "w2"] and db.state("cursor") == "11"
        assert first[0].payload["alert_id"] == first[0].id
        # re-evaluation after a crash (or a second replica): nothing new, the cursor moves
        assert outbox.record([alert("w1", 7)], cursor=12) == [] and db.state("cursor") == "12"
        assert outbox.pending() == 4 and outbox.pending("webhook") == 2
        due = outbox.due("webhook", now=1e12)
        assert [d.alert.id for d in due] == [first[0].id, first[1].id]
        outbox.delivered(due[0].id)
        outbox.retry(due[1].id, next_at=1e13, error="refused", give_up=False)
        assert [d.alert.id for d in outbox.due("webhook", now=1e12)] == []
        assert outbox.next_due("webhook") == 1e13
        outbox.retry(due[1].id, next_at=1e13, error="refused again", give_up=True)
        statuses = outbox.delivery_status(first[1].id)
        assert statuses[0]["status"] == FAILED and statuses[0]["attempts"] == 2
        assert outbox.delivery_status(first[0].id)[0]["status"] == DELIVERED
        assert [a.id for a in outbox.alerts("k1", after_id=first[0].id)] == [first[1].id]
        assert outbox.latest_id("k1") == first[1].id and outbox.latest_id("k9") == 0
        assert [f[0] for f in outbox.recent_fires(0.0)] == ["w1", "w2"]


def test_concurrent_recorders_never_duplicate_an_alert(memory_settings, tmp_path):
    """Two engines (threads here, replicas in production) judging the same events."""
    with MemoryBank(memory_settings(tmp_path)) as bank:
        outbox = Outbox(AlertDatabase(bank.store.backend))
        stored: list[int] = []

        def judge() -> None:
            for event_id in range(40):
                stored.extend(a.id for a in outbox.record([alert("w1", event_id)]))

        threads = [threading.Thread(target=judge) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(stored) == len(set(stored)) == 40
        assert len(outbox.alerts("k1", limit=1000)) == 40


def test_alert_tables_survive_and_reopen(memory_settings, tmp_path):
    with MemoryBank(memory_settings(tmp_path)) as bank:
        Outbox(AlertDatabase(bank.store.backend)).record([alert("w1", 1)], cursor=5)
    with MemoryBank(memory_settings(tmp_path / "other")) as bank:  # a second replica's view
        if bank.store.backend.name == "sqlite":
            return  # its own file: nothing shared (the first bank's file is checked below)
        db = AlertDatabase(bank.store.backend)
        assert db.state("cursor") == "5" and len(Outbox(db).alerts("k1")) == 1


def test_a_file_with_the_old_alert_tables_migrates_in_place(tmp_path):
    """Before schema v6 ``alertdb.py`` made the alert tables itself: they are kept as they are."""
    from eventvstream.config import MemorySettings

    with MemoryBank(MemorySettings(data_dir=tmp_path)) as bank:
        Outbox(AlertDatabase(bank.store.backend)).record([alert("w1", 1)], cursor=3)
    with sqlite3.connect(tmp_path / "evs.sqlite3") as conn:  # what an evs of schema v4 left
        conn.execute("INSERT INTO alert_state VALUES ('schema', '1')")
        conn.execute("DROP INDEX events_stream_wall")  # v5 (wall-clock times) came later
        conn.execute("ALTER TABLE events DROP COLUMN wall_start")
        for table in ("replicas", "stream_leases", "pull_specs", "shared_streams"):  # v7
            conn.execute(f"DROP TABLE {table}")
        for table in ("role_leases", "upload_jobs"):  # v8
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE event_frames DROP COLUMN image")  # v8
        conn.execute("PRAGMA user_version = 4")
    with MemoryBank(MemorySettings(data_dir=tmp_path)) as bank:
        db = AlertDatabase(bank.store.backend)
        assert bank.stats()["schema_version"] == SCHEMA_VERSION
        assert db.state("cursor") == "3" and len(Outbox(db).alerts("k1")) == 1
    with sqlite3.connect(tmp_path / "evs.sqlite3") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
