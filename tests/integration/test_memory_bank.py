"""The memory bank on real FAISS indexes and a real database: every test runs on the SQLite
file and on a PostgreSQL server (``pg_support.py``; skipped with the reason where PostgreSQL is
not installed). Tests of SQLite's own file handling run on SQLite only."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from eventvstream.config import MemorySettings
from eventvstream.errors import EvsError
from eventvstream.memory import MemoryBank, MemoryCorruptError
from eventvstream.memory.bank import MemoryLockedError
from eventvstream.memory.schema import SCHEMA_VERSION

DIM = 32


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def event(t: float, vector: np.ndarray, frames: int = 4) -> dict:
    return {
        "start": t,
        "end": t + 2.0,
        "frames": frames,
        "embedding": vector,
        "keyframes": [{"t": t, "frame_index": int(t * 25), "labels": []}],
        "labels": [["thing", 0.5]],
        "boundaries": {},
    }


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(request, backend):
    """``settings(tmp_path, **kw)``: memory settings on this test's backend (one database per
    test on PostgreSQL, shared by every bank the test opens)."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None

    def make(tmp_path, **kw) -> MemorySettings:
        where = {"backend": "postgres", "url": url} if url else {}
        return MemorySettings(data_dir=tmp_path, **({"checkpoint_every": 10**9} | where | kw))

    return make


def sql(bank: MemoryBank, statement: str, *args) -> None:
    """Change the database behind the bank's back, on either backend."""
    with bank.store.backend.writer() as conn:
        conn.execute(statement, args)


def crash(bank: MemoryBank) -> None:
    """What ``kill -9`` leaves: no checkpoint, no close; the lock and connections just go."""
    if bank._follower is not None:
        bank._follower.stop()
    bank.store.close()
    bank._lock_file.close()


@pytest.fixture
def vectors() -> np.ndarray:
    return unit_vectors(400)


def fill(bank: MemoryBank, vectors: np.ndarray, stream: str = "cam", start: float = 0.0):
    # 3-s steps with 2-s events: a 1-s gap, random vectors: nothing merges.
    return bank.add_many([event(start + 3.0 * i, v) for i, v in enumerate(vectors)], stream=stream)


def test_round_trip_survives_reopen(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        stored = fill(bank, vectors)
    with MemoryBank(settings(tmp_path)) as bank:
        assert bank.stats()["events"] == len(vectors)
        row = bank.get(stored[7].id)
        assert row is not None and row.start == pytest.approx(21.0)
        np.testing.assert_allclose(row.embedding, vectors[7])
        assert row.keyframes[0]["frame_index"] == 525
        hit = bank.search(vectors[7], k=1)[0]
        assert hit.event.id == stored[7].id and hit.score == pytest.approx(1.0, abs=1e-5)


def test_retrieval_matches_brute_force(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        stored = fill(bank, vectors)
        ids = np.array([s.id for s in stored])
        for q in unit_vectors(20, seed=1):
            hits = bank.search(q, k=5)
            expected = ids[np.argsort(-(vectors @ q))[:5]]
            assert [h.event.id for h in hits] == expected.tolist()
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_scope_by_stream_owner_and_time(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors[:200], stream="a")
        bank.add_many(
            [event(3.0 * i, v) for i, v in enumerate(vectors[200:])], stream="b", owner="alice"
        )
        hits = bank.search(vectors[250], k=10, stream="a")
        assert hits and all(h.event.stream == "a" for h in hits)
        hits = bank.search(vectors[250], k=3, owner="alice")
        assert hits[0].event.stream == "b" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        window = bank.events(stream="a", t0=30.0, t1=40.0)
        assert [round(r.start) for r in window] == [30, 33, 36, 39]
        assert all(
            h.event.start <= 40 and h.event.end >= 30
            for h in bank.search(vectors[5], k=10, stream="a", t0=30, t1=40)
        )
        assert bank.search(vectors[0], k=5, stream="nobody") == []


def test_switches_to_ivf_above_exact_max_and_keeps_recall(settings, tmp_path):
    vectors = unit_vectors(3000, seed=3)
    with MemoryBank(settings(tmp_path, exact_max=1000, ivf_nprobe=64), visual_dim=DIM) as bank:
        fill(bank, vectors)
        assert bank.stats()["indexes"]["visual"]["kind"] == "ivf"
        found = sum(bank.search(v, k=1)[0].score > 0.999 for v in vectors[:200])
        assert found >= 190


def test_replays_changes_made_after_the_last_checkpoint(settings, tmp_path, vectors):
    bank = MemoryBank(settings(tmp_path), visual_dim=DIM)
    fill(bank, vectors[:100])
    bank.checkpoint()
    late = fill(bank, vectors[100:150], start=1000.0)
    crash(bank)
    with MemoryBank(settings(tmp_path)) as reopened:
        assert len(reopened.indexes["visual"]) == 150
        assert reopened.search(vectors[120], k=1)[0].event.id == late[20].id


def test_corrupt_index_is_rebuilt_with_a_log_line(settings, tmp_path, vectors, caplog):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors)
    (tmp_path / "visual.faiss").write_bytes(b"garbage" * 100)
    with caplog.at_level("WARNING"), MemoryBank(settings(tmp_path)) as bank:
        assert len(bank.indexes["visual"]) == len(vectors)
        assert bank.search(vectors[3], k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    assert "rebuilding" in caplog.text


def test_missing_index_is_rebuilt(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors)
    (tmp_path / "visual.faiss").unlink()
    with MemoryBank(settings(tmp_path)) as bank:
        assert len(bank.indexes["visual"]) == len(vectors)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_corrupt_database_is_reported_and_left_untouched(settings, tmp_path):
    db = tmp_path / "evs.sqlite3"
    junk = b"this is not a database, it is a shopping list\n" * 200
    db.write_bytes(junk)
    with pytest.raises(MemoryCorruptError, match="left untouched"):
        MemoryBank(settings(tmp_path))
    assert db.read_bytes() == junk


def test_newer_schema_is_refused(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors[:3])
        if bank.store.backend.name == "sqlite":
            sql(bank, "PRAGMA user_version = 99")
        else:
            sql(bank, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(MemoryCorruptError, match="newer"):
        MemoryBank(settings(tmp_path))


def test_one_writer_process_per_directory(settings, tmp_path):
    with MemoryBank(settings(tmp_path), visual_dim=DIM), pytest.raises(MemoryLockedError):
        MemoryBank(settings(tmp_path))


def test_dimension_mismatch_is_a_clear_error(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors[:2])
        with pytest.raises(EvsError, match="32-d"):
            bank.add(event(100.0, np.ones(8, np.float32) / np.sqrt(8)), stream="cam")
    with pytest.raises(EvsError, match=r"32-d"):
        MemoryBank(settings(tmp_path), visual_dim=64)


def test_consolidation_merges_and_records(settings, tmp_path):
    v = unit_vectors(1)[0]
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        first = bank.add(event(0.0, v), stream="cam")
        second = bank.add(event(2.0, v), stream="cam")  # same scene, adjacent: merge
        other = bank.add(event(4.0, -v), stream="cam")  # different: append
        assert second.merged and second.id == first.id and not other.merged
        row = bank.get(first.id)
        assert (row.start, row.end, row.merge_count, row.frames) == (0.0, 4.0, 1, 8)
        assert len(row.keyframes) == 2
        assert bank.stats()["merges"] == 1
        assert len(bank.indexes["visual"]) == 2


def test_text_index_and_captions(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        stored = fill(bank, vectors[:10])
        text_vectors = unit_vectors(10, seed=9)
        for s, tv in zip(stored, text_vectors, strict=True):
            bank.set_text(s.id, f"event {s.id}", tv, caption=f"caption {s.id}")
        hit = bank.search(text_vectors[4], index="text", k=1)[0]
        assert hit.event.id == stored[4].id and hit.event.caption == f"caption {stored[4].id}"
        with pytest.raises(EvsError, match="no event"):
            bank.set_text(99999, "x", text_vectors[0])
    with MemoryBank(settings(tmp_path)) as bank:
        assert len(bank.indexes["text"]) == 10


def test_sources_make_reingest_idempotent(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        assert bank.begin_source("file-a", stream="cam")
        bank.add_many(
            [event(3.0 * i, v) for i, v in enumerate(vectors[:3])],
            stream="cam",
            source="file-a",
            first_index=0,
        )  # ... and then the process dies
        assert bank.stats()["events"] == 3
        assert bank.begin_source("file-a", stream="cam")  # half-done: discarded, restarted
        assert bank.stats()["events"] == 0 and len(bank.indexes["visual"]) == 0
        bank.add_many(
            [event(3.0 * i, v) for i, v in enumerate(vectors[:5])],
            stream="cam",
            source="file-a",
            first_index=0,
        )
        bank.finish_source("file-a", 5)
        assert not bank.begin_source("file-a", stream="cam")  # complete: skipped
        assert bank.stats()["sources"] == 1


def test_concurrent_writers_and_readers(settings, tmp_path):
    vectors = unit_vectors(800, seed=5)
    errors: list[BaseException] = []
    with MemoryBank(settings(tmp_path, checkpoint_every=100), visual_dim=DIM) as bank:

        def writer(part: int) -> None:
            try:
                for i in range(20):
                    chunk = vectors[part * 200 + i * 10 : part * 200 + (i + 1) * 10]
                    bank.add_many(
                        [event(3.0 * j, v) for j, v in enumerate(chunk)], stream=f"s{part}"
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def reader() -> None:
            try:
                for q in vectors[:100]:
                    bank.search(q, k=5)
                    bank.events(stream="s0", limit=5)
            except BaseException as exc:  # pragma: no cover
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert bank.stats()["events"] == 800 and len(bank.indexes["visual"]) == 800
        ids = [r.id for r in bank.events()]
        assert len(ids) == len(set(ids)) == 800


def test_narrow_scope_is_searched_exactly_even_on_ivf(settings, tmp_path):
    vectors = unit_vectors(3000, seed=11)
    with MemoryBank(settings(tmp_path, exact_max=1000, ivf_nprobe=1), visual_dim=DIM) as bank:
        stored = fill(bank, vectors)
        ids = np.array([s.id for s in stored])
        starts = 3.0 * np.arange(len(vectors))
        in_window = (starts + 2.0 >= 300) & (starts <= 600)
        for q in unit_vectors(10, seed=12):
            hits = bank.search(q, k=5, t0=300, t1=600)
            scores = vectors[in_window] @ q
            expected = ids[in_window][np.argsort(-scores)[:5]]
            assert [h.event.id for h in hits] == expected.tolist()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_version_1_database_is_migrated(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors[:5])
    with sqlite3.connect(tmp_path / "evs.sqlite3") as conn:  # rewind to the v1 layout
        for name in ("events_stream_start", "events_stream_end", "events_owner_start"):
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE INDEX events_scope_time ON events(stream, owner, t_start)")
        conn.execute("DROP TABLE deletions")
        conn.execute("DROP INDEX events_stream_wall")
        conn.execute("ALTER TABLE events DROP COLUMN wall_start")
        for table in ("replicas", "stream_leases", "pull_specs", "shared_streams"):  # v7
            conn.execute(f"DROP TABLE {table}")
        for table in ("role_leases", "upload_jobs"):  # v8
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE event_frames DROP COLUMN image")  # v8
        conn.execute("PRAGMA user_version = 1")
    with MemoryBank(settings(tmp_path)) as bank:
        assert bank.stats()["events"] == 5
        names = {r[0] for r in bank.store.conn.execute("SELECT name FROM sqlite_master")}
        assert {"events_stream_start", "events_stream_end", "events_owner_start"} <= names
        assert "deletions" in names and "events_stream_wall" in names
        assert bank.events(stream="cam")[0].wall_start is None  # a file's: no wall clock
        assert "events_scope_time" not in names and "events_scope_end" not in names
        assert bank.store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_time_window_finds_long_events_that_started_before_it(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path, consolidate=False), visual_dim=DIM) as bank:
        long_one = bank.add({**event(0.0, vectors[0]), "end": 500.0}, stream="cam")
        fill(bank, vectors[1:50], start=501.0)
        inside = bank.events(stream="cam", t0=400.0, t1=450.0)
        assert [r.id for r in inside] == [long_one.id]
        assert bank.search(vectors[0], k=1, stream="cam", t0=400, t1=450)[0].event.id == long_one.id
        # A database from before max_span was kept: the bound is derived on open, not assumed 0.
        sql(bank, "DELETE FROM meta WHERE key = 'max_span'")
    with MemoryBank(settings(tmp_path)) as bank:
        assert [r.id for r in bank.events(stream="cam", t0=400.0, t1=450.0)] == [long_one.id]


def test_forget_stream_removes_every_event_of_it_and_nothing_else(settings, tmp_path, vectors):
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        bank.begin_source("file-a", stream="cam")
        bank.add_many([event(3.0 * i, v) for i, v in enumerate(vectors[:3])], stream="cam",
                      source="file-a")  # fmt: skip
        fill(bank, vectors[3:6], stream="cam", start=100.0)  # live events: no source
        fill(bank, vectors[6:10], stream="other")
        fill(bank, vectors[10:12], stream="cam", start=200.0)
        bank.add(event(500.0, vectors[12]), stream="cam", owner="someone-else")
        summaries = bank.stream_summaries("")
        assert summaries["cam"]["events"] == 8 and summaries["other"]["events"] == 4
        assert bank.forget_stream("cam") == 8
        assert bank.count(stream="cam", owner="") == 0
        assert bank.count(stream="other") == 4
        assert bank.count(stream="cam", owner="someone-else") == 1
        assert bank.stats()["sources"] == 0
        assert len(bank.indexes["visual"]) == 5  # the index forgot them too
        hits = bank.search(vectors[0], k=5)
        assert all(hit.event.stream != "cam" or hit.event.owner for hit in hits)


def test_wall_clock_maps_to_stream_time_across_a_restart(settings, tmp_path, vectors):
    """Two live sessions: the second continued stream time just after the first one's last
    event (a restart), while the wall clock went on for 100 s. Stream times of a wall-clock
    moment: inside an event, its own; in the outage, the next event's start (a window's start)
    or the previous one's end (a window's end); before the first, the first's start."""
    t0 = 1_800_000_000.0
    rows = [(0.0, t0), (3.0, t0 + 3.0), (6.0, t0 + 106.0), (9.0, t0 + 109.0)]
    with MemoryBank(settings(tmp_path, consolidate=False), visual_dim=DIM) as bank:
        for (start, wall), v in zip(rows, vectors, strict=False):
            bank.add({**event(start, v), "wall_start": wall}, stream="cam")
        fill(bank, vectors[10:12], stream="file")
        stored = bank.events(stream="cam")
        assert [r.wall_start for r in stored] == [w for _, w in rows]
        assert stored[1].wall_end == t0 + 5.0 and stored[1].to_dict()["wall_end"] == t0 + 5.0
        at = bank.stream_time_at
        assert at("cam", "", t0 + 4.0) == 4.0  # inside the second event
        assert at("cam", "", t0 + 107.5) == 7.5  # inside the third, after the restart
        assert at("cam", "", t0 + 50.0) == 6.0  # the outage: the next event's start...
        assert at("cam", "", t0 + 50.0, gap="previous") == 5.0  # ...or the previous one's end
        assert at("cam", "", t0 - 60.0) == 0.0  # before the first event
        assert at("cam", "", t0 + 200.0) == 100.0  # past the last one: past its end
        assert at("file", "", t0) is None  # no wall clock on a file's events
        assert at("cam", "someone-else", t0) is None


def test_a_failed_batch_stores_none_of_it_and_the_bank_keeps_working(settings, tmp_path):
    """An error anywhere in a batch (a value that cannot be encoded; on PostgreSQL also a stream
    name its text type refuses, inside the pipelined transaction) rolls the whole batch back."""
    vectors = unit_vectors(12, seed=9)
    with MemoryBank(settings(tmp_path), visual_dim=DIM) as bank:
        fill(bank, vectors[:4])
        seq = bank.store.current_seq()
        bad = [event(100.0, vectors[4]), event(103.0, vectors[5]) | {"frames": "many"}]
        with pytest.raises(ValueError):
            bank.add_many(bad, stream="cam")
        if bank.store.backend.name == "postgres":
            with pytest.raises(bank.store.backend.errors):  # PostgreSQL text holds no NUL
                bank.add_many([event(106.0, vectors[6])], stream="cam\x00")
        assert bank.stats()["events"] == 4 and bank.store.current_seq() == seq
        stored = fill(bank, vectors[8:], start=200.0)
        assert bank.stats()["events"] == 8 and len(bank.indexes["visual"]) == 8
        assert bank.search(vectors[9], k=1)[0].event.id == stored[1].id
