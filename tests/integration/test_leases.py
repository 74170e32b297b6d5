"""Stream leases on a real PostgreSQL server (memory/leases.py): one holder at a time, takeover
on expiry and, at once, when the holder's process dies (its liveness lock goes with its
connection), and pull sources that outlive the replica that started them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from lease_support import present_replica

from eventvstream.memory.leases import LeaseStore, LivenessLock, PullRow, lock_key
from eventvstream.memory.postgres import PostgresBackend
from eventvstream.memory.schema import check_and_migrate


@pytest.fixture
def backend(postgres_url: str):
    backend = PostgresBackend(postgres_url, pool_size=4)
    check_and_migrate(backend)
    yield backend
    backend.close()


def _replica(backend, url: str, name: str, ttl: float = 30.0) -> tuple[LeaseStore, LivenessLock]:
    return present_replica(backend, url, name, ttl)


def test_one_holder_until_it_releases(backend, postgres_url: str) -> None:
    a, lock_a = _replica(backend, postgres_url, "a")
    b, lock_b = _replica(backend, postgres_url, "b")
    try:
        assert a.acquire("k", "cam1", "pull")
        assert a.acquire("k", "cam1", "pull")  # re-acquiring one's own lease is fine
        assert not b.acquire("k", "cam1", "websocket")
        assert b.holder("k", "cam1") == "a"
        assert b.acquire("other-key", "cam1", "websocket")  # streams are per owner
        assert b.renew([("k", "cam1")]) == set()  # not b's to renew
        assert a.renew([("k", "cam1")]) == {("k", "cam1")}
        assert sorted(a.live_replicas()) == ["a", "b"]
        a.release([("k", "cam1")])
        assert b.acquire("k", "cam1", "websocket")
        assert a.renew([("k", "cam1")]) == set()  # a learns that it lost it
    finally:
        lock_a.close()
        lock_b.close()


def test_an_expired_lease_is_taken_over(backend, postgres_url: str) -> None:
    a, lock_a = _replica(backend, postgres_url, "a", ttl=0.3)
    b, lock_b = _replica(backend, postgres_url, "b", ttl=0.3)
    try:
        assert a.acquire("", "cam", "pull")
        assert not b.acquire("", "cam", "pull")
        time.sleep(0.5)  # a is alive (its lock is held) but stopped renewing
        assert b.holder("", "cam") is None
        assert b.acquire("", "cam", "pull")
    finally:
        lock_a.close()
        lock_b.close()


def test_a_killed_holder_loses_its_leases_at_once(backend, postgres_url: str) -> None:
    """A separate process takes a lease with a long lifetime and is killed with SIGKILL: the
    lease is free as soon as PostgreSQL sees the connection end, long before it expires."""
    code = (
        "import sys, time\n"
        "from eventvstream.memory.leases import LeaseStore, LivenessLock\n"
        "from eventvstream.memory.postgres import PostgresBackend\n"
        "backend = PostgresBackend(sys.argv[1], pool_size=2)\n"
        "store = LeaseStore(backend, 'doomed', 600.0)\n"
        "lock = LivenessLock(sys.argv[1], store.key)\n"
        "lock.ensure()\n"
        "store.heartbeat()\n"
        "assert store.acquire('', 'cam', 'pull')\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE, text=True
    )
    b, lock_b = _replica(backend, postgres_url, "b")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert b.holder("", "cam") == "doomed"
        assert not b.acquire("", "cam", "pull")
        assert "doomed" in b.live_replicas()
        proc.kill()
        proc.wait(timeout=10)
        started = time.monotonic()
        while not b.acquire("", "cam", "pull"):
            assert time.monotonic() - started < 5.0, "the dead replica's lease was not freed"
            time.sleep(0.05)
        assert "doomed" not in b.live_replicas()
        assert b.holder("", "cam") == "b"
    finally:
        if proc.poll() is None:
            proc.kill()
        lock_b.close()


def test_pull_sources_outlive_their_replica(backend, postgres_url: str) -> None:
    a, lock_a = _replica(backend, postgres_url, "a")
    b, lock_b = _replica(backend, postgres_url, "b")
    try:
        a.save_pull(PullRow("k", "cam1", "http://u:secret@127.0.0.1:1/mjpeg", 2.0, "tcp"))
        a.save_pull(PullRow("k", "cam2", "rtsp://127.0.0.1:1/x", 1.0, "udp"))
        assert a.acquire("k", "cam1", "pull")
        assert a.pull_count() == 2
        assert [(p.stream, p.fps, p.transport) for p in b.unowned_pulls()] == [("cam2", 1.0, "udp")]
        lock_a.close()  # a "dies": its lease on cam1 is free now
        unowned = {p.stream: p for p in b.unowned_pulls()}
        assert set(unowned) == {"cam1", "cam2"}
        assert unowned["cam1"].url == "http://u:secret@127.0.0.1:1/mjpeg"  # resumable as is
        assert b.delete_pull("k", "cam2") and not b.delete_pull("k", "cam2")
        assert b.pull_keys() == {("k", "cam1")}
        assert b.add_stream("k", "empty") and not b.add_stream("k", "empty")
        assert set(a.streams("k")) == {"empty"}
        b.remove_stream("k", "empty")
        assert a.streams("k") == {}
        b.release_all()
        assert b.live_replicas() == []  # b left the list (a is dead)
    finally:
        lock_a.close()
        lock_b.close()


def test_lock_keys_are_positive_int4() -> None:
    for name in ("a", "replica-1", "x" * 64):
        assert 0 <= lock_key(name) < 2**31


class FakeHost:
    """The engine side of the replica loop, recorded: which pulls run here."""

    def __init__(self) -> None:
        self.pulls: dict[tuple[str, str], PullRow] = {}
        self.draining = False

    def active_streams(self) -> dict[tuple[str, str], str]:
        return dict.fromkeys(self.pulls, "pull")

    def resume_pull(self, row: PullRow) -> None:
        self.pulls[(row.owner, row.stream)] = row

    def drop_stream(self, owner: str, stream: str) -> None:
        self.pulls.pop((owner, stream), None)


def test_replicas_share_pull_sources_and_take_over(postgres_url: str) -> None:
    """The heartbeat loop of two in-process replicas (ticked by hand): pull sources spread to a
    fair share each, a replica that dies leaves its share to the other, and one that comes back
    gets its share back (the other sheds)."""
    from eventvstream.config import Settings
    from eventvstream.serving.replica import Replica

    def settings(name: str) -> Settings:
        return Settings(
            memory={"backend": "postgres", "url": postgres_url},
            server={"replica_id": name, "heartbeat_s": 60, "lease_ttl_s": 300},
        )  # long intervals: the test ticks by hand

    backend = PostgresBackend(postgres_url, pool_size=4)
    check_and_migrate(backend)
    hosts = {"a": FakeHost(), "b": FakeHost()}
    a = Replica(settings("a"), backend, hosts["a"])
    b = Replica(settings("b"), backend, hosts["b"])
    try:
        for i in range(5):
            a.leases.save_pull(PullRow("k", f"cam{i}", f"rtsp://127.0.0.1/{i}", 2.0, "tcp"))
        for _ in range(3):
            a.tick()
            b.tick()
        assert sorted(map(len, (hosts["a"].pulls, hosts["b"].pulls))) == [2, 3]
        assert not set(hosts["a"].pulls) & set(hosts["b"].pulls)  # never both

        a._liveness.close()  # a "crashes": its database connection is gone
        a._stop.set()
        hosts["a"].pulls.clear()
        b.tick()
        assert len(hosts["b"].pulls) == 5 and b.takeovers >= 2

        c = Replica(settings("c"), backend, FakeHost())  # a replacement joins
        hosts["c"] = c.host  # type: ignore[assignment]
        try:
            for _ in range(4):
                b.tick()
                b.tick()  # the shed stream's lease is given back on the next heartbeat
                c.tick()
            assert sorted(map(len, (hosts["b"].pulls, hosts["c"].pulls))) == [2, 3]
            assert not set(hosts["b"].pulls) & set(hosts["c"].pulls)
        finally:
            c.close()
    finally:
        b.close()
        a.close()
        backend.close()
