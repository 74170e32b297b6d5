#!/usr/bin/env python
"""Memory store benchmark, PostgreSQL against SQLite, in one run. Markdown on stdout::

    python scripts/bench_store.py                        # 20k events x 256-d (~2 min, 2 cores)
    python scripts/bench_store.py --events 1000000       # the issue's target size
    python scripts/bench_store.py --url postgresql://... # an existing server (else a throwaway)

What it measures, per backend, on a fresh database and a fresh data directory:

- ingest: ``add_many`` in batches of ``--batch`` (one durable commit each), events/s;
- top-10 search p50/p99 over the whole bank (FAISS + the row fetch from SQL), one query at a
  time, queries held out (never inserted);
- PostgreSQL only: commit-on-A to searchable-on-B, two banks (own caches) on one database:
  ``A.add`` returns, then B is polled until its top hit is the new event; and B's first open
  (an empty data directory: the cache is rebuilt from the database);
- cold start, both: A saves its caches, stores ``--replay`` more events, and stops as
  ``kill -9`` would (no save); a new bank on A's data directory then loads the saved cache and
  replays the rest from the database: the time to open, and a search answered after it.

Ingest is also reported as CPU time per event, this process plus the PostgreSQL server's
processes (throwaway server only): on a shared machine the wall-clock rate says as much about the
other jobs as about the store; the CPU cost says what a quiet one would do (2 cores at 100%
divided by it is an upper bound on the rate).

Progress goes to stderr, each backend's row to stdout as soon as it is done (a long run that is
stopped still reports what finished); ``--json`` also writes the rows to a file.

Vectors are random unit vectors: nothing merges, but every event still runs the consolidation
decision against its stream's last slot, as in production. Without ``--url`` a throwaway
server is started with Debian's ``initdb``/``pg_ctl`` (``eventvstream.testdata.postgres``),
default settings (fsync and synchronous_commit on): the same durability as SQLite's
``synchronous=FULL``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.memory.bank import MemoryBank


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def events(vectors: np.ndarray, start: float) -> list[dict]:
    return [
        {"start": start + 3.0 * i, "end": start + 3.0 * i + 2.0, "frames": 4, "embedding": v,
         "keyframes": [{"t": start + 3.0 * i}], "labels": [["thing", 0.5]], "boundaries": {}}
        for i, v in enumerate(vectors)
    ]  # fmt: skip


def settings(backend: str, url: str | None, data_dir: Path) -> MemorySettings:
    extra = {"backend": "postgres", "url": url} if backend == "postgres" else {}
    return MemorySettings(data_dir=data_dir, checkpoint_every=10**9, **extra)


def progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    bar = "#" * int(30 * done / total)
    print(f"\r{label:<18} [{bar:<30}] {done:,}/{total:,} {rate:,.0f}/s", end="", file=sys.stderr)
    if done >= total:
        print(file=sys.stderr, flush=True)


def server_cpu(server: object | None) -> float:
    """CPU seconds the throwaway PostgreSQL server's processes used so far (0 without one)."""
    if server is None:
        return 0.0
    import psutil

    pid = int((server.data / "postmaster.pid").read_text().split()[0])  # type: ignore[attr-defined]
    main = psutil.Process(pid)
    total = 0.0
    for process in [main, *main.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def bench_backend(
    backend: str, url: str | None, root: Path, args: argparse.Namespace, server: object | None
) -> dict:
    vectors = unit_vectors(args.events, args.dim, 0)
    queries = unit_vectors(args.queries, args.dim, 1)
    result: dict = {"backend": backend, "events": args.events}
    directory = root / f"{backend}-a"
    bank = MemoryBank(settings(backend, url, directory), visual_dim=args.dim)
    t0, client0, server0 = time.perf_counter(), time.process_time(), server_cpu(server)
    step = max(args.events // 100, args.batch)
    for part in range(0, args.events, args.batch):
        stream = f"cam{(part // args.batch) % args.streams}"
        bank.add_many(events(vectors[part : part + args.batch], 3.0 * part), stream=stream)
        if (part + args.batch) % step < args.batch or part + args.batch >= args.events:
            progress(f"{backend} ingest", min(part + args.batch, args.events), args.events, t0)
    result["ingest_eps"] = args.events / (time.perf_counter() - t0)
    result["client_cpu_us"] = 1e6 * (time.process_time() - client0) / args.events
    result["server_cpu_us"] = 1e6 * (server_cpu(server) - server0) / args.events
    result["ingest_cpu_us"] = result["client_cpu_us"] + result["server_cpu_us"]
    latencies = []
    for q in queries:
        t0 = time.perf_counter()
        bank.search(q, k=10)
        latencies.append(time.perf_counter() - t0)
    result["p50_ms"] = 1000 * float(np.percentile(latencies, 50))
    result["p99_ms"] = 1000 * float(np.percentile(latencies, 99))
    result["kind"] = bank.indexes["visual"].kind
    if backend == "postgres":
        result |= replication(bank, url, root, args)
    result |= cold_start(bank, backend, url, directory, args)
    return result


def cold_start(
    bank: MemoryBank, backend: str, url: str | None, directory: Path, args: argparse.Namespace
) -> dict:
    """Save A's caches, store ``--replay`` more events, stop as ``kill -9`` would, reopen."""
    t0 = time.perf_counter()
    bank.checkpoint()
    save_s = time.perf_counter() - t0
    extra = unit_vectors(args.replay, args.dim, 3)
    for part in range(0, args.replay, args.batch):
        batch = events(extra[part : part + args.batch], 2e9 + 3.0 * part)
        bank.add_many(batch, stream="late")
    # What kill -9 leaves: no checkpoint, no close; the lock and the connections just go.
    if bank._follower is not None:
        bank._follower.stop()
    bank.store.close()
    bank._lock_file.close()
    t0 = time.perf_counter()
    with MemoryBank(settings(backend, url, directory)) as reopened:
        opened_s = time.perf_counter() - t0
        hits = reopened.search(extra[-1], k=1)
        if not hits or hits[0].score < 0.999:
            raise RuntimeError("the reopened bank did not find an event stored after the save")
        vectors = len(reopened.indexes["visual"])
    return {"save_s": save_s, "cold_start_s": opened_s, "replayed": args.replay, "vectors": vectors}


def replication(a: MemoryBank, url: str | None, root: Path, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    with MemoryBank(settings("postgres", url, root / "postgres-b")) as b:
        rebuild_s = time.perf_counter() - t0
        fresh = unit_vectors(args.probes, args.dim, 2)
        delays = []
        for i, vector in enumerate(fresh):
            stored = a.add(events(vector[None], 1e9 + 10.0 * i)[0], stream="probe")
            t0 = time.perf_counter()
            while True:
                hits = b.search(vector, k=1)
                if hits and hits[0].event.id == stored.id:
                    break
                if time.perf_counter() - t0 > 10:
                    raise RuntimeError("an event stored on A was not searchable on B in 10 s")
                time.sleep(0.002)
            delays.append(time.perf_counter() - t0)
            time.sleep(0.05)  # not in phase with B's poll
    return {
        "b_rebuild_s": rebuild_s,
        "ab_p50_ms": 1000 * float(np.percentile(delays, 50)),
        "ab_p95_ms": 1000 * float(np.percentile(delays, 95)),
        "ab_max_ms": 1000 * max(delays),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=100, help="events per add_many (commit)")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--probes", type=int, default=40, help="A-to-B latency samples")
    parser.add_argument("--url", help="an existing PostgreSQL database (else a throwaway)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--replay", type=int, default=2_000, help="events stored after the save")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--tmp", help="where the data directories go (default: the system's)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    server = None
    url = args.url
    if "postgres" in backends and url is None:
        from eventvstream.testdata.postgres import PostgresServer, pg_bin

        bin_dir = pg_bin()
        if bin_dir is None:
            sys.exit("PostgreSQL is not installed (apt-get install -y postgresql), or pass --url")
        server = PostgresServer(bin_dir)
        server.start()
        url = server.new_database()
    machine = f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
    print(f"{args.events} events x {args.dim}-d, batches of {args.batch}, {args.streams} streams, "
          f"{args.queries} queries, {args.replay} replayed; {machine}\n")  # fmt: skip
    print("| backend | ingest ev/s | ingest CPU µs/event (client + server) | top-10 p50 ms "
          "| top-10 p99 ms | index | A→B p50/p95/max ms | B first open s "
          "| cold start s (save s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="evs-bench-store-", dir=args.tmp) as tmp:
            for backend in backends:
                pg = server if backend == "postgres" else None
                rows.append(r := bench_backend(backend, url, Path(tmp), args, pg))
                print_row(r)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    finally:
        if server is not None:
            server.stop()
    by = {r["backend"]: r for r in rows}
    if {"sqlite", "postgres"} <= by.keys():
        pg, lite = by["postgres"], by["sqlite"]
        ingest, p99 = pg["ingest_eps"] / lite["ingest_eps"], pg["p99_ms"] / lite["p99_ms"]
        cpu = pg["ingest_cpu_us"] / lite["ingest_cpu_us"]
        print(f"\npostgres/sqlite: ingest {ingest:.2f}x (CPU per event {cpu:.2f}x), "
              f"top-10 p99 {p99:.2f}x")  # fmt: skip


def print_row(r: dict) -> None:
    ab = (
        f"{r['ab_p50_ms']:.0f} / {r['ab_p95_ms']:.0f} / {r['ab_max_ms']:.0f}"
        if "ab_p50_ms" in r
        else "—"
    )
    rebuild = f"{r['b_rebuild_s']:.1f}" if "b_rebuild_s" in r else "—"
    print(f"| {r['backend']} | {r['ingest_eps']:,.0f} | "
          f"{r['ingest_cpu_us']:.0f} ({r['client_cpu_us']:.0f} + {r['server_cpu_us']:.0f}) | "
          f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
          f"{r['kind']} | {ab} | {rebuild} | {r['cold_start_s']:.2f} ({r['save_s']:.1f}) |",
          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
