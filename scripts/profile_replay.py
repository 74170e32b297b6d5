#!/usr/bin/env python
"""Where a cache rebuild's time goes: each step timed alone (wall and CPU), old way and new.

    python scripts/profile_replay.py --events 100000

One store per backend (filled as ``bench_replay.py`` fills it), then in this process: the
read of every ``(id, embedding)`` as the code before issue 17 round 3 did it (one statement
``ORDER BY seq``, held whole, an array per row; on PostgreSQL also its ``EXPLAIN ANALYZE``) and
as it does now (``EventStore.vectors_since``, chunks), a binary ``COPY`` decoded with numpy (a
tried alternative), then the FAISS index built the old way (flat, then upgraded to IVF) and the
new (``VectorIndex.from_parts``), and the IVF training alone.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.memory.backends import open_backend
from eventvstream.memory.index import VectorIndex, train_ivf
from eventvstream.memory.store import EventStore
from eventvstream.testdata.postgres import PostgresServer, pg_bin

sys.path.insert(0, str(Path(__file__).parent))
from bench_replay import fill


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {label} | {time.perf_counter() - t0:.2f} | {time.process_time() - c0:.2f} "
          f"| {rss:,.0f} |", flush=True)  # fmt: skip
    return out


def old_read(store: EventStore) -> tuple[np.ndarray, np.ndarray]:
    with store.backend.reader() as conn:
        rows = list(
            conn.execute("SELECT id, embedding FROM events WHERE seq > ? ORDER BY seq", (-1,))
        )
    ids = np.array([r[0] for r in rows])
    return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])


def copy_read(store: EventStore, dim: int) -> tuple[np.ndarray, np.ndarray]:
    sql = "COPY (SELECT id, embedding FROM events) TO STDOUT (FORMAT BINARY)"
    buf = bytearray()
    with store.backend.pool.connection() as raw, raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[attr-defined]
        for block in copy:
            buf += block
    row = np.dtype(
        [("n", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("v", "<f4", (dim,))]
    )
    rows = np.frombuffer(buf, dtype=row, count=(len(buf) - 21) // row.itemsize, offset=19)
    return rows["id"].astype(np.int64), np.ascontiguousarray(rows["v"])


def faiss_steps(backend: str, parts: list[tuple[np.ndarray, np.ndarray]], dim: int) -> None:
    ids = np.concatenate([p[0] for p in parts])
    vectors = np.concatenate([p[1] for p in parts])
    timed(f"{backend}: FAISS old (flat, upgraded)", lambda: VectorIndex(dim).upsert(ids, vectors))
    timed(f"{backend}: FAISS IVF training alone", lambda: train_ivf([vectors], len(ids), dim, 32))
    timed(
        f"{backend}: FAISS new (from_parts)",
        lambda: VectorIndex.from_parts(dim, [p[0] for p in parts], [p[1] for p in parts]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    server = PostgresServer(pg_bin())  # type: ignore[arg-type]
    server.start()
    url = server.new_database()
    print("| step | wall s | CPU s | peak RSS MiB |\n|---|---|---|---|")
    try:
        with tempfile.TemporaryDirectory(prefix="evs-profile-replay-") as tmp:
            for backend in args.backends.split(","):
                where = {"backend": "postgres", "url": url} if backend == "postgres" else {}
                directory = Path(tmp) / backend
                directory.mkdir()
                store = EventStore(
                    open_backend(MemorySettings(data_dir=directory, **where), directory)
                )
                timed(f"{backend}: fill", lambda s=store: fill(s, args))
                if backend == "postgres":
                    with store.backend.reader() as conn:
                        plan = conn.execute(
                            "EXPLAIN (ANALYZE, BUFFERS) SELECT id, embedding FROM events "
                            "WHERE seq > -1 ORDER BY seq"
                        ).fetchall()
                    print("\n".join(r[0] for r in plan), file=sys.stderr)
                timed(f"{backend}: old read", lambda s=store: old_read(s))
                parts = timed(
                    f"{backend}: new read",
                    lambda s=store: list(s.vectors_since(-1, "embedding", args.dim)),
                )
                if backend == "postgres":
                    timed("postgres: binary COPY + numpy", lambda s=store: copy_read(s, args.dim))
                faiss_steps(backend, parts, args.dim)
                store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
