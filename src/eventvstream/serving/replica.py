"""One replica among several on a shared memory database: its leases, heartbeat and takeovers.

Only with ``memory.backend: postgres``. Every ``server.heartbeat_s`` a thread:

1. says this replica is alive (``replicas.heartbeat``) and keeps its liveness lock
   (:class:`~eventvstream.memory.leases.LivenessLock`);
2. renews the lease of every stream live here, gives back the leases of streams that ended,
   and stops feeding a stream whose lease another replica took (it had expired: this replica was
   cut off from the database for longer than ``server.lease_ttl_s``);
3. stops a pull source whose persisted spec is gone (deleted through another replica);
4. claims pull sources nobody holds (their replica died, or they were left for a less loaded
   replica) up to a fair share, ``ceil(pull sources / live replicas)``, and resumes pulling
   them; a replica holding more than its share sheds one per heartbeat, so a restarted replica
   gets its share back;
5. keeps the roles it plays for the whole database (:mod:`eventvstream.serving.roles`: the alert
   engine runs on exactly one replica), or takes one that is free or whose holder died.

A WebSocket or REST-fed stream is claimed when its session opens (:meth:`Replica.claim`): a
stream live on another replica is refused with ``stream_busy`` (the load balancer's stream
affinity sends its client to the holder; after the holder dies the client's reconnect lands on a
replica that takes the lease over). Questions, search and REST reads need no lease: any replica
answers them from the shared store.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from typing import Protocol

from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.memory.backends import Backend
from eventvstream.memory.leases import LeaseStore, LivenessLock, PullRow
from eventvstream.memory.roles import RoleLeases
from eventvstream.serving.roles import Role

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (owner, stream)
CLAIM_GRACE_S = 5.0  # a claimed stream may take this long to show up as live here


class ReplicaHost(Protocol):
    """What the replica loop needs of the engine."""

    def active_streams(self) -> dict[Key, str]:
        """Streams live here now: ``"pull"`` for a running pull source, else ``"live"``."""
        ...

    def resume_pull(self, row: PullRow) -> None:
        """Start pulling a persisted source here (the lease is already ours)."""
        ...

    def drop_stream(self, owner: str, stream: str) -> None:
        """Stop feeding the stream here (its lease is gone, or it moves elsewhere)."""
        ...

    @property
    def draining(self) -> bool:
        """Shutting down: take nothing new over."""
        ...


def default_replica_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}"


class Replica:
    def __init__(self, settings: Settings, backend: Backend, host: ReplicaHost) -> None:
        server = settings.server
        self.id = server.replica_id or default_replica_id()
        self.leases = LeaseStore(backend, self.id, server.lease_ttl_s)
        self.role_leases = RoleLeases(backend, self.id, server.lease_ttl_s)
        self.roles: dict[str, Role] = {}
        self.interval_s = server.heartbeat_s
        self.host = host
        assert settings.memory.url is not None
        self._liveness = LivenessLock(settings.memory.url.get_secret_value(), self.leases.key)
        self._liveness.ensure()
        self.leases.heartbeat()
        self._held: dict[Key, float] = {}  # our leases: when we claimed them (monotonic)
        self._moving: set[Key] = set()  # pull sources being handed to another replica
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticks = 0
        self.takeovers = 0  # pull sources resumed here after another replica let them go
        self._thread = threading.Thread(target=self._run, name="evs-replica", daemon=True)
        self._thread.start()
        log.info("replica %s: heartbeat every %.1f s", self.id, self.interval_s)

    # -- claims from the request path ---------------------------------------------------------
    def claim(self, owner: str, stream: str, kind: str) -> None:
        """Hold the stream's lease for a session opening here; ``stream_busy`` while another
        live replica holds it. A stream whose lease is already ours (a REST frame after the
        first, a reconnect) costs no database round trip: the heartbeat renews it."""
        with self._lock:
            if (owner, stream) in self._held:
                return
        if not self.leases.acquire(owner, stream, kind):
            holder = self.leases.holder(owner, stream) or "another replica"
            raise EvsError(
                f"stream {stream!r} is live on replica {holder}; reconnect to it (or retry once "
                "it is gone)",
                code="stream_busy",
            )
        with self._lock:
            self._held.setdefault((owner, stream), time.monotonic())

    def holder(self, owner: str, stream: str) -> str | None:
        return self.leases.holder(owner, stream)

    def role(self, name: str) -> Role:
        """The role ``name`` (created on first use; taken at a heartbeat when free)."""
        with self._lock:
            if name not in self.roles:
                self.roles[name] = Role(self.role_leases, name)
            return self.roles[name]

    def alive(self, replica: str) -> bool:
        """Whether ``replica`` is live now (fresh heartbeat, liveness lock held)."""
        return replica == self.id or replica in self.leases.live_replicas()

    def fair_share(self, extra: int = 0) -> int:
        """Pull sources this replica should run: an even split over the live replicas."""
        replicas = max(1, len(self.leases.live_replicas()))
        return math.ceil((self.leases.pull_count() + extra) / replicas)

    # -- the heartbeat loop --------------------------------------------------------------------
    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
                failing = False
            except Exception:  # the database may be away: keep trying, say so once
                if not failing:
                    log.warning("replica %s: heartbeat failed; retrying", self.id, exc_info=True)
                failing = True

    def tick(self) -> None:
        self._liveness.ensure()
        self.leases.heartbeat()
        self._ticks += 1
        with self._lock:
            roles = list(self.roles.values())
        for role in roles:
            role.tick(self.host.draining)
        if self._ticks % 600 == 1:  # now and then: drop long-gone replicas' rows
            self.leases.forget_dead_replicas()
        active = self.host.active_streams()
        self._renew(active)
        self._follow_specs(active)
        if not self.host.draining:
            self._claim_pulls(active)

    def _renew(self, active: dict[Key, str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in active:  # e.g. a REST-fed session that opened before its claim ended
                self._held.setdefault(key, now)
            keep = [k for k, at in self._held.items() if k in active or now - at < CLAIM_GRACE_S]
            ended = [k for k in self._held if k not in keep]
            for key in ended:
                del self._held[key]
        self.leases.release(ended)
        lost = set(keep) - self.leases.renew(keep)
        for owner, stream in sorted(lost):
            if self.leases.acquire(owner, stream, active.get((owner, stream), "live")):
                continue  # the row was gone (not taken): ours again
            log.warning("replica %s: lost the lease of stream %s; stopping it", self.id, stream)
            with self._lock:
                self._held.pop((owner, stream), None)
            self.host.drop_stream(owner, stream)

    def _follow_specs(self, active: dict[Key, str]) -> None:
        """A pull source deleted through another replica stops here too."""
        pulls = [k for k, kind in active.items() if kind == "pull"]
        if not pulls:
            return
        specs = self.leases.pull_keys()
        for owner, stream in pulls:
            if (owner, stream) not in specs:
                log.info("replica %s: pull source of %s was removed; stopping", self.id, stream)
                self.host.drop_stream(owner, stream)

    def _claim_pulls(self, active: dict[Key, str]) -> None:
        mine = sum(1 for kind in active.values() if kind == "pull")
        share = self.fair_share()
        for row in self.leases.unowned_pulls():
            if mine >= share:
                break
            with self._lock:
                if (row.owner, row.stream) in self._held:
                    continue  # being started here by a request
            if (row.owner, row.stream) in active:
                continue
            if not self.leases.acquire(row.owner, row.stream, "pull"):
                continue  # another replica was quicker
            with self._lock:
                self._held[(row.owner, row.stream)] = time.monotonic()
            try:
                self.host.resume_pull(row)
            except Exception as exc:
                log.warning(
                    "replica %s: cannot resume the pull source of %s (%s)",
                    self.id,
                    row.stream,
                    getattr(exc, "code", type(exc).__name__),
                )
                with self._lock:
                    self._held.pop((row.owner, row.stream), None)
                self.leases.release([(row.owner, row.stream)])
                continue
            mine += 1
            self.takeovers += 1
            log.info("replica %s: took over the pull source of stream %s", self.id, row.stream)
        with self._lock:
            self._moving &= set(self._held)  # a moved stream's lease was given back
            busy = bool(self._moving)
        if mine > share and not busy:  # shed one at a time; a less loaded replica claims it
            key = max(k for k, kind in active.items() if kind == "pull")
            log.info("replica %s: %d pulls > share %d; moving %s", self.id, mine, share, key[1])
            with self._lock:
                self._moving.add(key)
                self._held[key] = -math.inf  # no claim grace: released once its session ends
            self.host.drop_stream(*key)

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the loop and give every lease back, so other replicas take over at once."""
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            for role in list(self.roles.values()):
                role.release()
            self.leases.release_all()
        except Exception:
            log.warning("replica %s: could not release its leases", self.id, exc_info=True)
        self._liveness.close()
