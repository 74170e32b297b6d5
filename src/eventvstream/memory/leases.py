"""Stream leases in the shared database: which replica owns which live stream, right now.

Why leases: with several ``evs serve`` replicas on one PostgreSQL database, a live stream must be
fed by exactly one of them (one detector, one open event, one writer per stream: consolidation
merges into the stream's last slot). A lease row ``(owner, stream) -> replica, expires`` says
who; the holder renews it on every heartbeat (``serving/replica.py``). Another replica may take
a lease over when it has expired, or at once when its holder is *dead*: every replica holds a
PostgreSQL advisory lock on a connection of its own for as long as it lives, and the server drops
it the moment the process dies (``kill -9`` closes the socket), so a crash is noticed without
waiting for the expiry; the expiry still bounds a host that vanished without closing anything.

Pull sources are persisted here too (``pull_specs``: URL, fps, transport), so a replica that
takes a dead replica's stream over can resume pulling it; so are the streams created over REST
(``shared_streams``), so any replica answers for a stream created through another.

Times are the database's clock (``NOW``), never a replica's, so replicas with skewed clocks
agree on what has expired. The tables exist on SQLite too (one schema on both backends), where
one process owns the whole file and no lease is ever taken.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventvstream.memory.backends import Backend

log = logging.getLogger(__name__)

#: The migration that adds these tables (schema.MIGRATIONS; its number is set there).
LEASES_DDL = """
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        lock_key INTEGER NOT NULL,
        started REAL NOT NULL,
        heartbeat REAL NOT NULL
    );
    CREATE TABLE stream_leases (
        owner TEXT NOT NULL,
        stream TEXT NOT NULL,
        replica TEXT NOT NULL,
        lock_key INTEGER NOT NULL,
        kind TEXT NOT NULL,
        acquired REAL NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (owner, stream)
    );
    CREATE INDEX stream_leases_replica ON stream_leases(replica);
    CREATE TABLE pull_specs (
        owner TEXT NOT NULL,
        stream TEXT NOT NULL,
        url TEXT NOT NULL,
        fps REAL NOT NULL,
        transport TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (owner, stream)
    );
    CREATE TABLE shared_streams (
        owner TEXT NOT NULL,
        stream TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (owner, stream)
    );
"""

LOCK_NAMESPACE = 0x657673  # pg_advisory_lock(ns, key): "evs"
NOW_SQL = {
    "postgres": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
# A lease is free when nobody holds it, it has expired, or its holder's liveness lock is gone.
HOLDER_ALIVE_SQL = {
    "postgres": (
        "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
        f"AND classid = {LOCK_NAMESPACE} AND objid::BIGINT = {{table}}.lock_key "
        "AND objsubid = 2)"
    ),
    "sqlite": "1 = 1",
}


def dialect_sql(backend_name: str) -> tuple[str, str]:
    """(the database's "now" in epoch seconds, the holder-alive condition with a ``{table}``
    placeholder) in ``backend_name``'s SQL: one place for every lease-like table."""
    now = NOW_SQL.get(backend_name, NOW_SQL["sqlite"])
    return now, HOLDER_ALIVE_SQL.get(backend_name, HOLDER_ALIVE_SQL["sqlite"])


def lock_key(replica: str) -> int:
    """The replica's advisory lock key: 31 bits of a CRC of its id (positive in int4 and oid)."""
    return zlib.crc32(replica.encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class PullRow:
    """A persisted pull source (the URL may hold credentials: never logged or returned)."""

    owner: str
    stream: str
    url: str
    fps: float
    transport: str


class LeaseStore:
    """The lease, replica, pull-source and shared-stream tables, for one replica id."""

    def __init__(self, backend: Backend, replica: str, ttl_s: float) -> None:
        self.backend = backend
        self.replica = replica
        self.key = lock_key(replica)
        self.ttl_s = ttl_s
        self.now, alive = dialect_sql(backend.name)
        self._lease_alive = alive.format(table="stream_leases")
        self._replica_alive = alive.format(table="replicas")

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self.backend.reader() as conn:
            return conn.execute(sql, args).fetchall()

    # -- replicas --------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Say this replica is alive (its row's heartbeat is now)."""
        with self.backend.writer() as conn:
            conn.execute(
                "INSERT INTO replicas (id, lock_key, started, heartbeat) "
                f"VALUES (?, ?, {self.now}, {self.now}) "
                "ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
                (self.replica, self.key),
            )

    def live_replicas(self) -> list[str]:
        """Replicas whose heartbeat is fresh and whose liveness lock is held (this one too)."""
        rows = self._rows(
            f"SELECT id FROM replicas WHERE heartbeat >= {self.now} - ? AND {self._replica_alive} "
            "ORDER BY id",
            (self.ttl_s,),
        )
        return [r[0] for r in rows]

    def forget_dead_replicas(self) -> int:
        """Drop rows of replicas gone for ten lease lifetimes (ids are not reused)."""
        with self.backend.writer() as conn:
            cur = conn.execute(
                f"DELETE FROM replicas WHERE heartbeat < {self.now} - ?", (10 * self.ttl_s,)
            )
            return int(cur.rowcount or 0)

    # -- leases ----------------------------------------------------------------------------------
    def acquire(self, owner: str, stream: str, kind: str) -> bool:
        """Take the stream's lease for this replica: True when it is now ours (it was free,
        expired, held by a dead replica, or already ours)."""
        with self.backend.writer() as conn:
            row = conn.execute(
                "INSERT INTO stream_leases "
                "(owner, stream, replica, lock_key, kind, acquired, expires) "
                f"VALUES (?, ?, ?, ?, ?, {self.now}, {self.now} + ?) "
                "ON CONFLICT (owner, stream) DO UPDATE SET replica = excluded.replica, "
                "lock_key = excluded.lock_key, kind = excluded.kind, "
                "acquired = excluded.acquired, expires = excluded.expires "
                f"WHERE stream_leases.replica = excluded.replica "
                f"OR stream_leases.expires < {self.now} OR NOT {self._lease_alive} "
                "RETURNING replica",
                (owner, stream, self.replica, self.key, kind, self.ttl_s),
            ).fetchone()
        return row is not None

    def holder(self, owner: str, stream: str) -> str | None:
        """The replica holding a valid lease on the stream, or None."""
        rows = self._rows(
            "SELECT replica FROM stream_leases WHERE owner = ? AND stream = ? "
            f"AND expires >= {self.now} AND {self._lease_alive}",
            (owner, stream),
        )
        return rows[0][0] if rows else None

    def renew(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Extend our leases on ``keys``; the ones still ours (a key missing from the answer
        was taken over by another replica after it expired)."""
        if not keys:
            return set()
        held: set[tuple[str, str]] = set()
        with self.backend.writer() as conn:
            for owner, stream in keys:  # a handful per replica: one statement each is fine
                row = conn.execute(
                    f"UPDATE stream_leases SET expires = {self.now} + ? "
                    "WHERE owner = ? AND stream = ? AND replica = ? RETURNING owner",
                    (self.ttl_s, owner, stream, self.replica),
                ).fetchone()
                if row is not None:
                    held.add((owner, stream))
        return held

    def release(self, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        with self.backend.writer() as conn:
            conn.executemany(
                "DELETE FROM stream_leases WHERE owner = ? AND stream = ? AND replica = ?",
                [(owner, stream, self.replica) for owner, stream in keys],
            )

    def release_all(self) -> None:
        """Give every lease back and leave the replica list (a clean shutdown)."""
        with self.backend.writer() as conn:
            conn.execute("DELETE FROM stream_leases WHERE replica = ?", (self.replica,))
            conn.execute("DELETE FROM replicas WHERE id = ?", (self.replica,))

    def leases(self) -> list[tuple[str, str, str, str]]:
        """Every valid lease: (owner, stream, replica, kind)."""
        return [
            tuple(r)
            for r in self._rows(
                "SELECT owner, stream, replica, kind FROM stream_leases "
                f"WHERE expires >= {self.now} AND {self._lease_alive} ORDER BY owner, stream"
            )
        ]

    # -- pull sources ------------------------------------------------------------------------------
    def save_pull(self, spec: PullRow) -> None:
        with self.backend.writer() as conn:
            conn.execute(
                "INSERT INTO pull_specs (owner, stream, url, fps, transport, created) "
                f"VALUES (?, ?, ?, ?, ?, {self.now}) "
                "ON CONFLICT (owner, stream) DO UPDATE SET url = excluded.url, "
                "fps = excluded.fps, transport = excluded.transport",
                (spec.owner, spec.stream, spec.url, spec.fps, spec.transport),
            )

    def delete_pull(self, owner: str, stream: str) -> bool:
        with self.backend.writer() as conn:
            cur = conn.execute(
                "DELETE FROM pull_specs WHERE owner = ? AND stream = ?", (owner, stream)
            )
            return bool(cur.rowcount)

    def pull_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM pull_specs")[0][0])

    def pull_keys(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self._rows("SELECT owner, stream FROM pull_specs")}

    def unowned_pulls(self) -> list[PullRow]:
        """Pull sources no live replica holds a lease on, oldest first."""
        rows = self._rows(
            "SELECT p.owner, p.stream, p.url, p.fps, p.transport FROM pull_specs p "
            "WHERE NOT EXISTS (SELECT 1 FROM stream_leases WHERE stream_leases.owner = p.owner "
            f"AND stream_leases.stream = p.stream AND stream_leases.expires >= {self.now} "
            f"AND {self._lease_alive}) ORDER BY p.created, p.owner, p.stream"
        )
        return [PullRow(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]

    # -- streams created over REST ---------------------------------------------------------------
    def add_stream(self, owner: str, stream: str) -> bool:
        """Record the stream; True when it was not recorded before."""
        with self.backend.writer() as conn:
            row = conn.execute(
                f"INSERT INTO shared_streams (owner, stream, created) VALUES (?, ?, {self.now}) "
                "ON CONFLICT (owner, stream) DO NOTHING RETURNING stream",
                (owner, stream),
            ).fetchone()
        return row is not None

    def streams(self, owner: str) -> dict[str, float]:
        """The owner's recorded streams and when each was created (Unix time)."""
        rows = self._rows("SELECT stream, created FROM shared_streams WHERE owner = ?", (owner,))
        return {r[0]: float(r[1]) for r in rows}

    def remove_stream(self, owner: str, stream: str) -> None:
        with self.backend.writer() as conn:
            conn.execute(
                "DELETE FROM shared_streams WHERE owner = ? AND stream = ?", (owner, stream)
            )


class LivenessLock:
    """This replica's "I am alive" advisory lock, on a PostgreSQL connection of its own.

    Why its own connection and not the pool's: the lock must live exactly as long as the process
    (a pooled connection is shared and recycled). PostgreSQL releases it when the connection
    ends, which a dying process's kernel does at once, even on ``kill -9``."""

    def __init__(self, url: str, key: int) -> None:
        self._url, self._key = url, key
        self._conn: Any = None

    def ensure(self) -> None:
        """(Re)connect and take the lock if the connection is gone (the database restarted)."""
        import psycopg  # only on the postgres backend

        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                return
            except psycopg.Error:
                self.close()
        self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        self._conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, self._key))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken: nothing to release
                log.debug("closing the liveness connection failed", exc_info=True)
            self._conn = None
