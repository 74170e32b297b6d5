"""Two alert engines on one real PostgreSQL database, as two replicas run them (in one process
here; ``tests/e2e/test_replica_alerts.py`` runs real ``evs serve`` replicas and kill -9).

Only the holder of the ``alerts`` role evaluates and delivers. A watch created through the other
replica applies; events stored through either are alerted once and delivered once; the other
replica's live listeners get the alerts too (its fan-out follows the alert log). When the holder
dies (its liveness lock goes) the other takes the role and carries on from the committed cursor:
nothing is alerted or delivered twice, nothing is skipped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_support import Receiver, Side, stored_event, until

from eventvstream.config import MemorySettings
from eventvstream.memory import MemoryBank
from eventvstream.serving.alerts.spec import WatchCreate


def test_one_evaluator_a_takeover_and_no_duplicates(postgres_url: str, tmp_path: Path) -> None:
    a = Side(postgres_url, tmp_path, "a")
    b = Side(postgres_url, tmp_path, "b")
    receiver = Receiver()
    try:
        a.role.tick(draining=False)
        b.role.tick(draining=False)
        assert a.role.held() and not b.role.held()
        until(lambda: a.engine.leading)
        # created through B, which does not evaluate: A's rules pick it up from the database
        body = WatchCreate(stream="door", text="a long one", min_duration_s=1.0, cooldown_s=0,
                           webhook={"url": receiver.url})  # fmt: skip
        created = b.engine.watches.create("k1", body)
        receiver.secret = created["webhook"]["secret"]
        until(lambda: "k1" in a.engine.watches.owners())

        first = [b.store(0.0, 4.0), a.store(10.0, 14.0), b.store(20.0, 20.5)]  # the last: short
        assert receiver.wait_for(2)
        until(lambda: b.engine.fanout is not None and b.engine.fanout.published >= 2)
        assert not b.engine.leading
        alerted = {r.event_id for r in a.engine.outbox.alerts("k1")}
        assert alerted == set(first[:2])
        until(lambda: not any(a.engine.pending().values()))  # all delivered

        a.lock.close()  # A dies: its liveness lock is gone, the role is free at once
        until(lambda: b.role.tick(draining=False) or b.role.held())  # B's next heartbeats
        a.role.tick(draining=False)  # (were A alive, its next heartbeat says it lost the role)
        assert not a.role.held()
        until(lambda: b.engine.leading and not a.engine.leading)

        later = [a.store(30.0, 34.0), b.store(40.0, 44.0)]  # through either replica
        assert receiver.wait_for(4)
        time.sleep(1.0)  # a duplicate would have arrived by now
        records = b.engine.outbox.alerts("k1")
        assert {r.event_id for r in records} == set(first[:2] + later)
        assert len({(r.watch_id, r.event_id) for r in records}) == len(records) == 4
        assert receiver.duplicates == 0 and receiver.bad_signatures == 0
        assert len(receiver.unique) == 4
    finally:
        receiver.close()
        a.close()
        b.close()


def test_a_watch_deleted_on_one_replica_stops_on_the_other(
    postgres_url: str, tmp_path: Path
) -> None:
    a = Side(postgres_url, tmp_path, "a")
    b = Side(postgres_url, tmp_path, "b")
    try:
        body = WatchCreate(stream="door", text="anything", min_duration_s=1.0)
        created = a.engine.watches.create("k1", body)
        until(lambda: "k1" in b.engine.watches.owners())
        b.engine.watches.delete("k1", created["id"])
        until(lambda: "k1" not in a.engine.watches.owners())
    finally:
        a.close()
        b.close()


@dataclass
class Keyframe:
    image: np.ndarray = field(default_factory=lambda: np.full((48, 64, 3), 200, np.uint8))


@dataclass
class Pixels:
    """What ``KeyframeStore.capture`` reads of a just-stored event: its keyframes' pixels."""

    keyframes: list[Keyframe] = field(default_factory=lambda: [Keyframe()])


@pytest.mark.parametrize("shared", [False, True])
def test_keyframe_reaches_another_replica_only_through_a_shared_database(
    shared: bool, tmp_path: Path, request
) -> None:
    """The keyframe JPEG goes into the database on PostgreSQL (another replica serves it), and
    stays a file only on SQLite (one process)."""
    from eventvstream.memory.alertdb import AlertDatabase
    from eventvstream.serving.alerts.keyframes import KeyframeStore

    url = request.getfixturevalue("postgres_url") if shared else None
    where = {"backend": "postgres", "url": url} if shared else {}
    bank = MemoryBank(MemorySettings(data_dir=tmp_path / "a", **where))
    try:
        event_id = bank.add(stored_event(0.0, 4.0, "thing"), stream="door", owner="k1").id
        here = KeyframeStore(AlertDatabase(bank.store.backend), tmp_path / "a" / "keyframes")
        there = KeyframeStore(AlertDatabase(bank.store.backend), tmp_path / "b" / "keyframes")

        here.capture(Pixels(), event_id, "door", "k1")
        assert here.known(event_id) and there.known(event_id)  # brightness: in the database
        assert here.path(event_id) is not None
        found = there.path(event_id)
        if shared:
            assert found is not None and found.read_bytes() == here.path(event_id).read_bytes()
        else:
            assert found is None
    finally:
        bank.close()
