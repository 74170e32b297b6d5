"""Roles in the shared database: a job that exactly one replica does at a time (the alert engine).

Why a role lease and not a stream lease: some work belongs to the database, not to a stream. The
alert engine keeps one cursor over the change sequence and one set of outbox senders; two
replicas running it would race that cursor and send each delivery twice. A row ``role ->
replica, expires`` in ``role_leases`` says who runs it, with the stream leases' mechanics
(:mod:`.leases`): the holder renews it every heartbeat; another replica takes it over once it has
expired, or at once when the holder's liveness advisory lock is gone (``kill -9`` closes the
holder's connection, PostgreSQL drops the lock), so a killed replica's role moves within a
heartbeat.

A holder that was cut off long enough to lose the role may still be finishing a batch: its
writes are *fenced*. :meth:`RoleLeases.check` runs inside the holder's write transaction and
locks the role row (``FOR UPDATE``), so either the row still names this replica and the takeover
waits for the commit, or the transaction is rolled back with :class:`RoleLost`. The new holder
reads its state (the alert cursor) only after taking the row, so it starts exactly where the
last committed batch ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventvstream.memory.leases import dialect_sql, lock_key

if TYPE_CHECKING:
    from eventvstream.memory.backends import Backend, Connection

#: Part of migration 8 (schema.MIGRATIONS).
ROLES_DDL = """
    CREATE TABLE role_leases (
        role TEXT PRIMARY KEY,
        replica TEXT NOT NULL,
        lock_key INTEGER NOT NULL,
        acquired REAL NOT NULL,
        expires REAL NOT NULL
    );
"""


class RoleLost(Exception):
    """This replica no longer holds the role: the write it was part of is rolled back."""


class RoleLeases:
    """``role_leases`` for one replica id (the same id and liveness lock as its stream leases)."""

    def __init__(self, backend: Backend, replica: str, ttl_s: float) -> None:
        self.backend = backend
        self.replica = replica
        self.key = lock_key(replica)
        self.ttl_s = ttl_s
        self.now, alive = dialect_sql(backend.name)
        self._alive = alive.format(table="role_leases")

    def acquire(self, role: str) -> bool:
        """Take the role: True when it is ours now (free, expired, its holder dead, or ours)."""
        with self.backend.writer() as conn:
            row = conn.execute(
                "INSERT INTO role_leases (role, replica, lock_key, acquired, expires) "
                f"VALUES (?, ?, ?, {self.now}, {self.now} + ?) "
                "ON CONFLICT (role) DO UPDATE SET replica = excluded.replica, "
                "lock_key = excluded.lock_key, acquired = excluded.acquired, "
                "expires = excluded.expires "
                "WHERE role_leases.replica = excluded.replica "
                f"OR role_leases.expires < {self.now} OR NOT {self._alive} "
                "RETURNING replica",
                (role, self.replica, self.key, self.ttl_s),
            ).fetchone()
        return row is not None

    def renew(self, role: str) -> bool:
        """Extend our hold; False when another replica has taken the role."""
        with self.backend.writer() as conn:
            row = conn.execute(
                f"UPDATE role_leases SET expires = {self.now} + ? "
                "WHERE role = ? AND replica = ? RETURNING role",
                (self.ttl_s, role, self.replica),
            ).fetchone()
        return row is not None

    def holder(self, role: str) -> str | None:
        """The replica holding the role now (valid and alive), or None."""
        with self.backend.reader() as conn:
            row = conn.execute(
                "SELECT replica FROM role_leases WHERE role = ? "
                f"AND expires >= {self.now} AND {self._alive}",
                (role,),
            ).fetchone()
        return None if row is None else str(row[0])

    def release(self, role: str | None = None) -> None:
        """Give the role (or every role of this replica) back: another replica takes it at its
        next heartbeat."""
        with self.backend.writer() as conn:
            if role is None:
                conn.execute("DELETE FROM role_leases WHERE replica = ?", (self.replica,))
            else:
                conn.execute(
                    "DELETE FROM role_leases WHERE role = ? AND replica = ?", (role, self.replica)
                )

    def check(self, conn: Connection, role: str) -> None:
        """Inside a write transaction: raise :class:`RoleLost` unless the role is still ours,
        and hold its row until the commit (a takeover waits for this transaction)."""
        row: Any = conn.execute(
            f"SELECT replica FROM role_leases WHERE role = ?{self.backend.lock_clause}", (role,)
        ).fetchone()
        if row is None or row[0] != self.replica:
            raise RoleLost(f"replica {self.replica} no longer holds the {role} role")
