"""The lease tables on SQLite (one schema on both backends) and the replica settings. SQLite
never has a second process (the bank's flock), but the same SQL must run there: the queries use
the database's clock on both, and a lease is free once expired."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from eventvstream.config import Settings
from eventvstream.memory.backends import SqliteBackend
from eventvstream.memory.leases import LeaseStore, PullRow
from eventvstream.memory.schema import check_and_migrate


def test_leases_on_sqlite(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "evs.sqlite3")
    check_and_migrate(backend)
    a, b = LeaseStore(backend, "a", 0.3), LeaseStore(backend, "b", 0.3)
    a.heartbeat()
    assert a.live_replicas() == ["a"]
    assert a.acquire("", "cam", "pull") and not b.acquire("", "cam", "pull")
    assert b.holder("", "cam") == "a"
    assert a.renew([("", "cam")]) == {("", "cam")}
    time.sleep(0.4)
    assert b.holder("", "cam") is None and b.acquire("", "cam", "websocket")
    assert a.renew([("", "cam")]) == set()
    a.save_pull(PullRow("", "door", "rtsp://127.0.0.1/x", 2.0, "tcp"))
    a.save_pull(PullRow("", "door", "rtsp://127.0.0.1/y", 1.0, "udp"))  # replaces it
    assert [(p.url, p.fps) for p in b.unowned_pulls()] == [("rtsp://127.0.0.1/y", 1.0)]
    assert b.pull_count() == 1
    backend.close()


def test_lease_lifetime_must_outlast_two_heartbeats() -> None:
    Settings(server={"heartbeat_s": 1.0, "lease_ttl_s": 2.0})
    with pytest.raises(ValidationError, match="lease_ttl_s"):
        Settings(server={"heartbeat_s": 2.0, "lease_ttl_s": 3.0})
