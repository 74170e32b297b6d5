"""Shared by the lease and role tests: a replica's presence (its lease store's heartbeat plus
its liveness lock, as ``serving/replica.py`` keeps them)."""

from __future__ import annotations

from eventvstream.memory.leases import LeaseStore, LivenessLock
from eventvstream.memory.postgres import PostgresBackend


def present_replica(
    backend: PostgresBackend, url: str, name: str, ttl: float = 30.0
) -> tuple[LeaseStore, LivenessLock]:
    """A replica that has taken its liveness lock and sent its first heartbeat."""
    store = LeaseStore(backend, name, ttl)
    lock = LivenessLock(url, store.key)
    lock.ensure()
    store.heartbeat()
    return store, lock
