"""Role leases on a real PostgreSQL server (memory/roles.py, serving/roles.py): one holder of a
role at a time, takeover at once when the holder's process dies, and a fence that rolls back the
write of a holder that lost the role without noticing."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from lease_support import present_replica

from eventvstream.memory.leases import LivenessLock
from eventvstream.memory.postgres import PostgresBackend
from eventvstream.memory.roles import RoleLeases, RoleLost
from eventvstream.memory.schema import check_and_migrate
from eventvstream.serving.roles import Role


@pytest.fixture
def backend(postgres_url: str):
    backend = PostgresBackend(postgres_url, pool_size=4)
    check_and_migrate(backend)
    yield backend
    backend.close()


def _replica(backend, url: str, name: str, ttl: float = 30.0) -> tuple[RoleLeases, LivenessLock]:
    _store, lock = present_replica(backend, url, name, ttl)
    return RoleLeases(backend, name, ttl), lock


def _mark(backend, value: str, fence) -> None:
    """A write guarded by ``fence`` (as the alert engine's commits are)."""
    with backend.writer() as conn:
        fence(conn)
        conn.execute(
            "INSERT INTO alert_state (key, value) VALUES ('test', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (value,),
        )


def _marked(backend) -> str | None:
    with backend.reader() as conn:
        row = conn.execute("SELECT value FROM alert_state WHERE key = 'test'").fetchone()
    return None if row is None else row[0]


def _within(seconds: float, check) -> None:
    """PostgreSQL drops a closed session's advisory locks a moment after the client closes."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def test_one_holder_and_a_fence(backend, postgres_url: str) -> None:
    a, lock_a = _replica(backend, postgres_url, "a")
    b, lock_b = _replica(backend, postgres_url, "b")
    try:
        assert a.acquire("alerts") and a.acquire("alerts")  # ours, and ours again
        assert not b.acquire("alerts")
        assert b.holder("alerts") == "a"
        assert b.acquire("other-role")  # roles are independent
        assert a.renew("alerts") and not b.renew("alerts")
        _mark(backend, "by a", lambda conn: a.check(conn, "alerts"))
        with pytest.raises(RoleLost):
            _mark(backend, "by b", lambda conn: b.check(conn, "alerts"))
        assert _marked(backend) == "by a"  # b's write was rolled back
        lock_a.close()  # a "dies": its role is free as soon as the server sees it, long
        _within(5.0, lambda: b.acquire("alerts"))  # before it expires
        assert b.holder("alerts") == "b"
        with pytest.raises(RoleLost):  # a, cut off, cannot commit as the holder any more
            _mark(backend, "late a", lambda conn: a.check(conn, "alerts"))
        assert not a.renew("alerts")
        assert _marked(backend) == "by a"
        b.release()
        assert b.holder("alerts") is None and a.acquire("alerts")
    finally:
        lock_a.close()
        lock_b.close()


def test_role_object_takes_keeps_and_loses(backend, postgres_url: str) -> None:
    """serving.roles.Role as the replica heartbeat drives it."""
    a_leases, lock_a = _replica(backend, postgres_url, "a", ttl=0.6)
    b_leases, lock_b = _replica(backend, postgres_url, "b", ttl=0.6)
    a, b = Role(a_leases, "alerts"), Role(b_leases, "alerts")
    seen: list[bool] = []
    b.listeners.append(seen.append)
    try:
        a.tick(draining=False)
        b.tick(draining=False)
        assert a.held() and not b.held()
        time.sleep(0.3)
        a.tick(draining=False)  # renewed
        b.tick(draining=False)
        assert a.held() and not b.held()
        time.sleep(0.7)  # a stopped renewing: its lease expired by the database's clock
        assert not a.held()  # and by its own clock too
        b.tick(draining=False)
        assert b.held() and seen == [True]
        a.tick(draining=False)  # a learns it lost it
        assert not a.held()
        with pytest.raises(RoleLost):
            _mark(backend, "a", a.fence)
        b.release()
        assert not b.held() and seen == [True, False]
        b.tick(draining=True)  # a draining replica takes nothing
        assert not b.held()
    finally:
        lock_a.close()
        lock_b.close()


def test_a_killed_holder_loses_its_role_at_once(backend, postgres_url: str) -> None:
    code = (
        "import sys, time\n"
        "from eventvstream.memory.leases import LeaseStore, LivenessLock\n"
        "from eventvstream.memory.postgres import PostgresBackend\n"
        "from eventvstream.memory.roles import RoleLeases\n"
        "backend = PostgresBackend(sys.argv[1], pool_size=2)\n"
        "leases = LeaseStore(backend, 'doomed', 600.0)\n"
        "lock = LivenessLock(sys.argv[1], leases.key)\n"
        "lock.ensure()\n"
        "leases.heartbeat()\n"
        "assert RoleLeases(backend, 'doomed', 600.0).acquire('alerts')\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE, text=True
    )
    b, lock_b = _replica(backend, postgres_url, "b")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert b.holder("alerts") == "doomed" and not b.acquire("alerts")
        proc.kill()
        proc.wait(timeout=10)
        _within(5.0, lambda: b.acquire("alerts"))  # the dead replica's role is freed
        assert b.holder("alerts") == "b"
    finally:
        if proc.poll() is None:
            proc.kill()
        lock_b.close()
