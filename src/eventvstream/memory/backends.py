"""Where the memory's SQL lives: the one place that knows SQLite from PostgreSQL.

The queries in ``store.py`` and ``transaction.py`` are written once, in the SQL both engines
speak (``?`` placeholders, ``ON CONFLICT … DO UPDATE``, ``CAST(… AS DOUBLE PRECISION)``); a
backend supplies what differs: how to get a connection for a read and for a write
transaction, how a new row's id comes back, where the schema version is kept, how the DDL of
``schema.MIGRATIONS`` is spelled, and whether other processes may write the same data
(``shared``: then the FAISS caches follow the change sequence, ``MemoryBank``).

- :class:`SqliteBackend`: one file, one connection per thread, one writer at a time (a
  ``threading.Lock`` held from ``BEGIN IMMEDIATE`` to ``COMMIT``); WAL with
  ``synchronous=FULL``, so a committed transaction survives ``kill -9`` and power loss.
- :class:`~eventvstream.memory.postgres.PostgresBackend`: a psycopg 3 connection pool on a
  shared database (``postgres.py``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from eventvstream.config import MemorySettings


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the queries use of a connection: sqlite3's ``execute`` with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...


class Backend(Protocol):
    name: str
    #: Other processes may write this database: caches must follow its change sequence.
    shared: bool
    #: Appended to the "last slot of a stream" query inside a write (a row lock where it exists).
    lock_clause: str
    #: Exceptions that mean "the database is unreadable or unreachable".
    errors: tuple[type[BaseException], ...]
    #: ``writer(pipeline=True)`` queues statements until a result is read (fewer round trips).
    pipelines: bool

    def describe(self) -> str:
        """Where the data is, for messages (never a password)."""
        ...

    def reader(self) -> Any:
        """``with backend.reader() as conn:`` a connection for reads (context manager)."""
        ...

    def writer(self, *, pipeline: bool = False) -> Any:
        """``with backend.writer() as conn:`` one write transaction, committed durably on a
        clean exit and rolled back on an exception. ``pipeline``: statements may be queued
        and sent together, a cursor's result arriving when it is first read."""
        ...

    def read_chunks(
        self, sql: str, params: Sequence[Any], rows: int
    ) -> Iterator[Sequence[Sequence[Any]]]:
        """The result of one ``SELECT`` (one snapshot), streamed in lists of up to ``rows``
        rows rather than held whole: a replay reads every row of a large table."""
        ...

    def insert_id(self, conn: Connection, sql: str, params: Sequence[Any]) -> int:
        """Run an ``INSERT`` into ``events`` and return the new row's id."""
        ...

    def reserve_ids(self, conn: Connection, count: int) -> Callable[[], list[int]]:
        """Ask for ``count`` new event ids (queued where the writer pipelines); the callable
        returns them, last one first, or [] to let each ``INSERT`` take its own."""
        ...

    def insert_events(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows of ``events`` (every column of ``rows.COLUMN_NAMES``, ids given), in as
        few statements as the engine allows."""
        ...

    def check(self, existed: bool) -> None:
        """Raise ``MemoryCorruptError`` if the stored data is unreadable."""
        ...

    def migration_lock(self) -> Any:
        """Held while checking and applying migrations (one migrator at a time)."""
        ...

    def schema_version(self) -> int: ...
    def apply_migration(self, target: int, ddl: str) -> None: ...
    def size_bytes(self) -> int: ...
    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """``url`` without its password (and without query parameters, which may hold one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.password else f"{parts.username}@"
    netloc = (user if parts.username else "") + host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_backend(settings: MemorySettings, directory: Path) -> Backend:
    """The backend ``settings`` ask for (``memory.backend``)."""
    if settings.backend == "postgres":
        from eventvstream.memory.postgres import PostgresBackend  # psycopg only when used

        assert settings.url is not None  # MemorySettings validates this
        return PostgresBackend(settings.url.get_secret_value(), pool_size=settings.pool_size)
    return SqliteBackend(directory / "evs.sqlite3")


@contextmanager
def sqlite_transaction(
    conn: sqlite3.Connection, lock: threading.Lock | threading.RLock
) -> Iterator[sqlite3.Connection]:
    """One durable write transaction on an autocommit SQLite connection: ``BEGIN IMMEDIATE``
    takes the write lock up front (no upgrade deadlock), committed when the block exits without
    error, rolled back otherwise. ``lock`` serialises this process's writers on ``conn``."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class SqliteBackend:
    """One SQLite file: per-thread connections, one writer at a time."""

    name = "sqlite"
    shared = False  # the bank's flock keeps every other process out of the directory
    lock_clause = ""  # BEGIN IMMEDIATE already holds the whole file
    errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
    pipelines = False  # a statement is a function call: nothing to save

    def __init__(self, path: Path) -> None:
        self.path = path
        self.existed = path.exists() and path.stat().st_size > 0
        self._local = threading.local()
        self.write_lock = threading.RLock()  # re-entered by migrations (migration_lock)

    def describe(self) -> str:
        return str(self.path)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        yield self.conn

    @contextmanager
    def writer(self, *, pipeline: bool = False) -> Iterator[sqlite3.Connection]:
        with sqlite_transaction(self.conn, self.write_lock) as conn:
            yield conn

    def read_chunks(
        self, sql: str, params: Sequence[Any], rows: int
    ) -> Iterator[Sequence[Sequence[Any]]]:
        cursor = self.conn.execute(sql, params)  # a read transaction: one snapshot throughout
        try:
            while chunk := cursor.fetchmany(rows):
                yield chunk
        finally:
            cursor.close()

    def insert_id(self, conn: Connection, sql: str, params: Sequence[Any]) -> int:
        return int(conn.execute(sql, params).lastrowid)  # type: ignore[attr-defined]

    def reserve_ids(self, conn: Connection, count: int) -> Callable[[], list[int]]:
        return list  # an INSERT is a function call here: nothing to save

    def insert_events(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        from eventvstream.memory.rows import INSERT_WITH_ID_SQL

        conn.executemany(INSERT_WITH_ID_SQL, rows)

    def check(self, existed: bool) -> None:
        from eventvstream.memory.schema import MemoryCorruptError

        if existed:
            result = self.conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise MemoryCorruptError(f"{self.path}: integrity check failed: {result}")

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        with self.write_lock:
            yield

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def apply_migration(self, target: int, ddl: str) -> None:
        self.conn.executescript(f"BEGIN; {ddl} PRAGMA user_version = {target}; COMMIT;")

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the durability settings every write relies on: WAL journal and
    ``synchronous=FULL`` (a committed transaction survives ``kill -9`` and power loss)."""
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
