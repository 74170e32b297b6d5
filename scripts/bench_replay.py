#!/usr/bin/env python
"""A new replica's first open: how long it takes to build its FAISS cache from the database.

Markdown on stdout::

    python scripts/bench_replay.py --events 100000
    python scripts/bench_replay.py --events 100000 --baseline-src /tmp/evs-base/src  # before/after

One store per backend (a throwaway PostgreSQL server, an SQLite file) is filled once with
``--events`` random 256-d events; then, for each round and each code tree (this one, and
``--baseline-src`` if given, in alternating order so neither always runs first on a warmer
machine), a child process opens a ``MemoryBank`` with no saved cache (PostgreSQL: an empty data
directory, what a new replica has; SQLite: the store's directory with its cache files removed)
and reports the time to open, its CPU seconds, the PostgreSQL server's CPU seconds (read after
the child exits: the connection's backend process has gone by then, so this undercounts), its
peak RSS by the end of the open, and whether the cache it built holds exactly the stored ids and
vectors.

The store is filled through ``store.transaction`` in batches (the rows ``MemoryBank.add_many``
writes; random vectors never merge), not through the bank: the writer's own FAISS cache is not
what is measured, and skipping it makes a 1M store a matter of minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_store import server_cpu, unit_vectors  # scripts/ is on sys.path when run as a script
from eventvstream.config import MemorySettings
from eventvstream.memory.backends import open_backend
from eventvstream.memory.store import EventStore

# Run in a child with the code tree under test first on the path: open, time, check, exit
# without closing (a close would save the cache, which is not part of a first open).
CHILD = r"""
import hashlib, json, os, resource, sys, time
import numpy as np
from eventvstream.config import MemorySettings
from eventvstream.memory.bank import MemoryBank
spec = json.loads(sys.argv[1])
extra = {"backend": "postgres", "url": spec["url"]} if spec["url"] else {}
settings = MemorySettings(data_dir=spec["dir"], checkpoint_every=10**9, **extra)
t0, cpu0 = time.perf_counter(), time.process_time()
bank = MemoryBank(settings)
opened, cpu = time.perf_counter() - t0, time.process_time() - cpu0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the check's copies
index = bank.indexes["visual"]
ids, vectors = index._all()
order = np.argsort(ids)
digest = hashlib.sha256(ids[order].tobytes() + np.ascontiguousarray(vectors[order]).tobytes())
print(json.dumps({"open_s": opened, "cpu_s": cpu, "rss_mib": rss, "vectors": len(ids),
                  "kind": index.kind, "digest": digest.hexdigest()}), flush=True)
os._exit(0)
"""


def fill(store: EventStore, args: argparse.Namespace) -> str:
    """``--events`` events into ``store``; returns the digest of (ids, vectors) by id."""
    store.set_meta("dims", json.dumps({"visual": args.dim}))
    all_ids = np.zeros(args.events, np.int64)
    all_vectors = np.zeros((args.events, args.dim), np.float32)
    t0 = time.perf_counter()
    for part in range(0, args.events, args.batch):
        vectors = unit_vectors(min(args.batch, args.events - part), args.dim, part)
        stream = f"cam{(part // args.batch) % args.streams}"
        with store.transaction(batch=len(vectors)) as tx:
            for i, v in enumerate(vectors):
                t = 3.0 * (part + i)
                all_ids[part + i] = tx.insert(
                    {"stream": stream, "start": t, "end": t + 2.0, "frames": 4, "embedding": v,
                     "keyframes": [{"t": t}], "labels": [["thing", 0.5]], "boundaries": {}}
                )  # fmt: skip
        all_vectors[part : part + len(vectors)] = vectors
        done = part + len(vectors)
        rate = done / (time.perf_counter() - t0)
        print(f"\r{store.backend.name} fill {done:,}/{args.events:,} {rate:,.0f}/s",
              end="", file=sys.stderr, flush=True)  # fmt: skip
    print(file=sys.stderr)
    order = np.argsort(all_ids)
    return hashlib.sha256(all_ids[order].tobytes() + all_vectors[order].tobytes()).hexdigest()


def first_open(
    src: Path, backend: str, url: str | None, directory: Path, server: object | None, timeout: float
) -> dict:
    """One child opening a bank with no saved cache on ``directory``, code from ``src``."""
    if backend == "postgres":
        shutil.rmtree(directory, ignore_errors=True)
    else:
        for name in ("visual.faiss", "text.faiss", "index.json"):
            (directory / name).unlink(missing_ok=True)
    env = os.environ | {"PYTHONPATH": str(src)}
    spec = json.dumps({"url": url, "dir": str(directory)})
    before = server_cpu(server)
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, spec], env=env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    if done.returncode != 0:
        raise RuntimeError(f"the child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = server_cpu(server) - before
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=5_000, help="events per fill transaction")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--baseline-src", type=Path, help="another tree's src/ to compare")
    parser.add_argument("--baseline-rounds", type=int, help="rounds for the baseline (default all)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per open")
    parser.add_argument("--tmp", help="where the stores go (default: the system's)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    backends = args.backends.split(",")
    ours = Path(__file__).resolve().parents[1] / "src"
    trees = {"after": ours} | ({"before": args.baseline_src} if args.baseline_src else {})
    server, url = None, None
    if "postgres" in backends:
        from eventvstream.testdata.postgres import PostgresServer, pg_bin

        bin_dir = pg_bin()
        if bin_dir is None:
            sys.exit("PostgreSQL is not installed (apt-get install -y postgresql)")
        server = PostgresServer(bin_dir)
        server.start()
        url = server.new_database()
    load = os.getloadavg()
    print(f"{args.events:,} events x {args.dim}-d, {args.rounds} rounds; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} at the start\n")  # fmt: skip
    print("| backend | code | round | first open s | CPU s (client + server) | peak RSS MiB "
          "| vectors | index | cache = store |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="evs-bench-replay-", dir=args.tmp) as tmp:
            expected, stores = {}, {}
            for backend in backends:
                store_dir = Path(tmp) / backend
                where = {"backend": "postgres", "url": url} if backend == "postgres" else {}
                settings = MemorySettings(data_dir=store_dir, **where)
                store_dir.mkdir()
                store = EventStore(open_backend(settings, store_dir))
                expected[backend] = fill(store, args)
                store.close()
                stores[backend] = Path(tmp) / "replica" if backend == "postgres" else store_dir
            for round_no in range(args.rounds):
                order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
                for code in order:
                    if code == "before" and round_no >= (args.baseline_rounds or args.rounds):
                        continue
                    for backend in backends:
                        pg = server if backend == "postgres" else None
                        result = first_open(
                            trees[code], backend, url, stores[backend], pg, args.timeout
                        )
                        result |= {"backend": backend, "code": code, "round": round_no + 1}
                        result["equal"] = result.get("digest") == expected[backend]
                        rows.append(result)
                        print_row(result)
                        if args.json:
                            args.json.write_text(json.dumps(rows, indent=1))
    finally:
        if server is not None:
            server.stop()
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


def print_row(r: dict) -> None:
    if "timeout" in r:
        print(f"| {r['backend']} | {r['code']} | {r['round']} | > {r['timeout']:.0f} "
              "| — | — | — | — | — |", flush=True)  # fmt: skip
        return
    cpu = f"{r['cpu_s'] + r['server_cpu_s']:.1f} ({r['cpu_s']:.1f} + {r['server_cpu_s']:.1f})"
    print(f"| {r['backend']} | {r['code']} | {r['round']} | {r['open_s']:.2f} | {cpu} | "
          f"{r['rss_mib']:,.0f} | {r['vectors']:,} | {r['kind']} | "
          f"{'yes' if r['equal'] else 'NO'} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
