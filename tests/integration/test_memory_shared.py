"""Many processes, one memory: banks on one real PostgreSQL database (``pg_support.py``).

Each bank keeps its own FAISS caches and follows the shared change sequence; writers in
separate processes race on the same and on different streams; a writer is killed with SIGKILL
mid-ingest. Skipped, with the reason, where PostgreSQL is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eventvstream.config import MemorySettings
from eventvstream.errors import EvsError
from eventvstream.memory import MemoryBank, caches
from eventvstream.memory.backends import redact_url

DIM = 16
WRITER = Path(__file__).with_name("pg_writer.py")


def settings(url: str, data_dir: Path, **kw) -> MemorySettings:
    return MemorySettings(
        data_dir=data_dir, backend="postgres", url=url, **({"checkpoint_every": 10**9} | kw)
    )


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def event(t: float, vector: np.ndarray) -> dict:
    return {"start": t, "end": t + 2.0, "frames": 4, "embedding": vector, "keyframes": [],
            "labels": [], "boundaries": {}}  # fmt: skip


def wait_for(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    t0 = time.perf_counter()
    while not predicate():
        if time.perf_counter() - t0 > timeout:
            pytest.fail(f"not true within {timeout} s")
        time.sleep(0.01)
    return time.perf_counter() - t0


def test_a_write_through_one_bank_is_searchable_through_another_within_a_second(
    postgres_url, tmp_path
):
    with (
        MemoryBank(settings(postgres_url, tmp_path / "a"), visual_dim=DIM) as a,
        MemoryBank(settings(postgres_url, tmp_path / "b"), visual_dim=DIM) as b,
    ):
        delays = []
        for i in range(5):
            vector = unit(i)
            stored = a.add(event(10.0 * i, vector), stream=f"cam{i % 2}")
            delays.append(wait_for(lambda s=stored, v=vector: _top(b, v) == s.id, timeout=1.0))
        assert max(delays) <= 1.0
        # and back: B writes, A finds it; a deletion through A leaves B's search too
        late = b.add(event(500.0, unit(99)), stream="cam9")
        wait_for(lambda: _top(a, unit(99)) == late.id, timeout=1.0)
        assert a.forget_stream("cam9") == 1
        wait_for(lambda: late.id not in _ids_in_cache(b), timeout=1.0)


def _top(bank: MemoryBank, vector: np.ndarray) -> int | None:
    hits = bank.search(vector, k=1)
    return hits[0].event.id if hits and hits[0].score > 0.999 else None


def _ids_in_cache(bank: MemoryBank) -> set[int]:
    _scores, ids = bank.indexes["visual"].search(np.ones((1, DIM), np.float32), 100)
    return {int(i) for i in ids[0] if i >= 0}


def test_a_bank_starting_late_loads_its_cache_and_replays_the_rest(postgres_url, tmp_path):
    with MemoryBank(settings(postgres_url, tmp_path / "a"), visual_dim=DIM) as a:
        first = [a.add(event(10.0 * i, unit(i)), stream="cam") for i in range(5)]
    with MemoryBank(settings(postgres_url, tmp_path / "b")) as b:  # checkpoints on close
        assert len(b.indexes["visual"]) == 5
    with MemoryBank(settings(postgres_url, tmp_path / "a")) as a:
        later = [a.add(event(100.0 + 10 * i, unit(10 + i)), stream="cam") for i in range(3)]
    with MemoryBank(settings(postgres_url, tmp_path / "b")) as b:
        assert len(b.indexes["visual"]) == 8
        assert _top(b, unit(11)) == later[1].id and _top(b, unit(2)) == first[2].id


def _writer(url: str, data_dir: Path, stream: str, batches: int, size: int, seed: int):
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, str(data_dir), stream, str(batches), str(size),
         str(seed)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _acks(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.strip()]


def test_concurrent_writer_processes_never_duplicate_ids_or_merge_across_streams(
    postgres_url, tmp_path
):
    plan = [("shared", 1), ("shared", 2), ("shared", 3), ("other", 4)]
    batches, size = 15, 8
    procs = [
        _writer(postgres_url, tmp_path / f"w{seed}", stream, batches, size, seed)
        for stream, seed in plan
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs)
    with MemoryBank(settings(postgres_url, tmp_path / "check")) as bank:
        rows = {row.id: row for row in bank.events()}
        inserted: list[int] = []
        for (stream, _), output in zip(plan, outputs, strict=True):
            for ack in _acks(output.splitlines()):
                for event_id, was_merged in zip(ack["ids"], ack["merged"], strict=True):
                    assert rows[event_id].stream == stream  # never merged into another stream
                    if not was_merged:
                        inserted.append(event_id)
        assert len(inserted) == len(set(inserted)) == len(rows)  # one id per inserted slot
        for stream in ("shared", "other"):
            writers = sum(1 for s, _ in plan if s == stream)
            frames = sum(r.frames for r in rows.values() if r.stream == stream)
            assert frames == writers * batches * size * 4  # no merge lost or applied twice
        merges = sum(r.merge_count for r in rows.values())
        assert merges == len(plan) * batches * size - len(rows) == bank.stats()["merges"]
        assert merges > 0  # the race was real: consolidation ran under it


def test_kill_9_of_a_writer_loses_no_acknowledged_event(postgres_url, tmp_path):
    proc = _writer(postgres_url, tmp_path / "w", "cam", 0, 5, 7)
    lines = []
    assert proc.stdout is not None
    while len(lines) < 20:
        line = proc.stdout.readline()
        assert line, "the writer died before it was killed"
        lines.append(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with MemoryBank(settings(postgres_url, tmp_path / "check")) as bank:
        for ack in _acks(lines):
            for event_id, start in zip(ack["ids"], ack["starts"], strict=True):
                row = bank.get(event_id)
                assert row is not None and row.stream == "cam"
                assert row.start <= start <= row.end  # the event is in its (merged) slot
        assert len(bank.indexes["visual"]) == bank.count()


def test_a_replica_built_while_another_process_writes_misses_nothing_and_has_no_twin(
    postgres_url, tmp_path, monkeypatch
):
    """The rebuild reads in chunks (tiny here: a long read) while a writer inserts and merges
    (rewriting rows the read may already have passed); then the replica follows the
    sequence. Its cache must hold exactly the rows in the database, each once."""
    monkeypatch.setattr(caches, "REPLAY_CHUNK_BYTES", 4 * DIM * 7)
    with MemoryBank(settings(postgres_url, tmp_path / "seed"), visual_dim=DIM) as seed:
        seed.add_many([event(3.0 * i, unit(1000 + i)) for i in range(400)], stream="old")
    proc = _writer(postgres_url, tmp_path / "w", "cam", 0, 5, 11)
    assert proc.stdout is not None
    try:
        assert all(proc.stdout.readline() for _ in range(3))  # it is writing ...
        with MemoryBank(settings(postgres_url, tmp_path / "r")) as replica:
            assert all(proc.stdout.readline() for _ in range(3))  # ... and went on
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            replica.follow()
            ids, vectors = replica.indexes["visual"]._all()
            rows = {row.id: row.embedding for row in replica.events()}
            assert len(ids) == len(set(ids.tolist())) == len(rows) > 400
            assert set(ids.tolist()) == set(rows)
            for event_id, vector in zip(ids.tolist(), vectors, strict=True):
                np.testing.assert_array_equal(vector, rows[event_id])
    finally:
        if proc.poll() is None:
            proc.kill()


def test_credentials_are_never_in_messages(postgres_server, tmp_path, caplog):
    url = f"postgresql://evs:s3cret-pw@127.0.0.1:{_closed_port()}/evs"
    assert "s3cret" not in redact_url(url) and "127.0.0.1" in redact_url(url)
    with caplog.at_level("DEBUG"), pytest.raises(EvsError) as caught:
        MemoryBank(settings(url, tmp_path))
    assert caught.value.code == "memory_unavailable"
    assert "s3cret" not in str(caught.value) and "s3cret" not in caplog.text
    assert "s3cret" not in repr(settings(url, tmp_path))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
