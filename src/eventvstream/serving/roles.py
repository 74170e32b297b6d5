"""A role one replica plays for the whole database (the alert engine), as the code using it sees it.

:class:`Role` is kept by the replica heartbeat (``serving/replica.py``): taken when free, renewed
every heartbeat, dropped when another replica has it. Its user asks :meth:`Role.held` before
doing the role's work and passes :meth:`Role.fence` into the write transactions that matter, so
a replica that lost the role without noticing (cut off from the database longer than the lease)
cannot commit as if it still had it (:mod:`eventvstream.memory.roles`).

:data:`SOLO` is the role of a server alone on its database (SQLite, or one process on
PostgreSQL): always held, nothing to fence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from eventvstream.memory.roles import RoleLeases, RoleLost

log = logging.getLogger(__name__)

ALERTS = "alerts"  # the alert engine: evaluation, its cursor, the outbox senders


class RoleHolder(Protocol):
    def held(self) -> bool: ...
    def fence(self, conn: Any) -> None: ...


class _Solo:
    """Always held: one process on its database."""

    def held(self) -> bool:
        return True

    def fence(self, conn: Any) -> None:
        return None


SOLO: RoleHolder = _Solo()


class Role:
    """One role lease of this replica. Thread-safe; :meth:`tick` runs on the heartbeat thread."""

    def __init__(self, leases: RoleLeases, name: str) -> None:
        self.leases = leases
        self.name = name
        self._lock = threading.Lock()
        self._valid_until = -1.0  # monotonic; held while now < this
        self.changes = 0  # times it was taken or lost (tests, logs)
        self.listeners: list[Callable[[bool], None]] = []

    def held(self) -> bool:
        """True while our lease is valid by our own clock: it ends no later than the database
        says it does (the deadline counts from *before* the renewing statement)."""
        with self._lock:
            return time.monotonic() < self._valid_until

    def fence(self, conn: Any) -> None:
        """Inside a write transaction: raises :class:`RoleLost` unless the role is still ours."""
        try:
            self.leases.check(conn, self.name)
        except RoleLost:
            self._set(False)
            raise

    def tick(self, draining: bool) -> None:
        """Renew the role if held, take it if free (not while draining)."""
        started = time.monotonic()
        if self.held():
            if self.leases.renew(self.name):
                with self._lock:
                    self._valid_until = started + self.leases.ttl_s
                return
            log.warning("replica %s: lost the %s role", self.leases.replica, self.name)
            self._set(False)
            return
        if draining:
            return
        if self.leases.acquire(self.name):
            log.info("replica %s: took the %s role", self.leases.replica, self.name)
            self._set(True, started + self.leases.ttl_s)

    def _set(self, held: bool, until: float = -1.0) -> None:
        with self._lock:
            was = time.monotonic() < self._valid_until
            self._valid_until = until if held else -1.0
        if was != held:
            self.changes += 1
            for listener in list(self.listeners):
                try:
                    listener(held)
                except Exception:
                    log.exception("a %s role listener failed", self.name)

    def holder(self) -> str | None:
        return self.leases.holder(self.name)

    def release(self) -> None:
        """Give the role back (a clean shutdown): another replica takes it at its next tick."""
        self._set(False)
        self.leases.release(self.name)
