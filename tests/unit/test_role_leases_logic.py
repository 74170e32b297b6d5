"""serving.roles.Role against a recorded fake of its lease table (the real one is tested on
PostgreSQL in tests/integration/test_roles.py): when it counts as held, and who is told."""

from __future__ import annotations

import time

import pytest

from eventvstream.memory.roles import RoleLost
from eventvstream.serving.roles import SOLO, Role


class FakeLeases:
    """The table as one replica sees it: ``free`` says whether acquiring succeeds."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.replica, self.ttl_s = "a", ttl_s
        self.free = True
        self.mine = False
        self.released: list[str] = []

    def acquire(self, role: str) -> bool:
        if self.free or self.mine:
            self.mine, self.free = True, False
        return self.mine

    def renew(self, role: str) -> bool:
        return self.mine

    def check(self, conn: object, role: str) -> None:
        if not self.mine:
            raise RoleLost(role)

    def release(self, role: str) -> None:
        self.released.append(role)
        self.mine, self.free = False, True

    def holder(self, role: str) -> str | None:
        return self.replica if self.mine else None


def test_taken_renewed_lost_and_told() -> None:
    leases = FakeLeases()
    role = Role(leases, "alerts")  # type: ignore[arg-type]
    told: list[bool] = []
    role.listeners.append(told.append)
    assert not role.held()
    role.tick(draining=False)
    assert role.held() and told == [True]
    role.tick(draining=False)  # renewed: no news
    assert role.held() and told == [True]
    role.fence(None)  # still ours: the write may commit
    leases.mine = False  # another replica took it over
    with pytest.raises(RoleLost):
        role.fence(None)
    assert not role.held() and told == [True, False]
    role.tick(draining=False)  # not free: stays lost
    assert not role.held() and told == [True, False]


def test_a_draining_replica_takes_nothing_and_gives_back() -> None:
    leases = FakeLeases()
    role = Role(leases, "alerts")  # type: ignore[arg-type]
    role.tick(draining=True)
    assert not role.held()
    role.tick(draining=False)
    assert role.held()
    role.tick(draining=True)  # a holder keeps renewing while it drains
    assert role.held()
    role.release()
    assert not role.held() and leases.released == ["alerts"]


def test_unrenewed_it_lapses_by_the_local_clock() -> None:
    """A replica whose heartbeat stalls stops acting as the holder when its lease would have
    expired in the database, even before it can ask the database."""
    leases = FakeLeases(ttl_s=0.05)
    role = Role(leases, "alerts")  # type: ignore[arg-type]
    role.tick(draining=False)
    assert role.held()
    time.sleep(0.1)
    assert not role.held()


def test_solo_is_always_held() -> None:
    assert SOLO.held()
    SOLO.fence(None)
