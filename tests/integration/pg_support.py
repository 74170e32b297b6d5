"""pytest fixtures for a real PostgreSQL server (``eventvstream.testdata.postgres``): one
server per session, a fresh database per test. Without the binaries (or psycopg) every test
that asks for them is skipped, with the install command in the reason."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from eventvstream.testdata.postgres import INSTALL_HINT, PostgresServer, pg_bin


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install psycopg[binary])")
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(server.root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start here: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def memory_settings(request):
    """``memory_settings(data_dir, **kw)``: ``MemorySettings`` on this test's backend, run once
    on the SQLite file and once on PostgreSQL (one database per test, shared by every bank the
    test opens, as replicas share one)."""
    from eventvstream.config import MemorySettings

    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None

    def make(data_dir, **kw) -> MemorySettings:
        where = {"backend": "postgres", "url": url} if url else {}
        return MemorySettings(data_dir=data_dir, **(where | kw))

    return make
