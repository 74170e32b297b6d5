#!/usr/bin/env python
"""Memory-bank benchmark: durable ingest, query latency (ours vs raw FAISS), IVF recall,
cold start and resident memory, in one run. Markdown on stdout, progress on stderr::

    python scripts/bench_memory.py                     # 1M events x 256-d (~12 min, 2 cores)
    python scripts/bench_memory.py --events 20000      # quick run
    python scripts/bench_memory.py --events 200000 --dim 1280 --json .bench/memory-1280.json

Why it is built this way:

- Vectors are *clustered* synthetic unit vectors, because real event embeddings cluster
  (recurring places, people, shots); uniform random high-d vectors have no neighbourhood
  structure and are a needlessly pessimistic case for IVF (``--vectors uniform`` runs it
  anyway). Flat gaussian blobs around random centres proved too easy (recall 1.000 at every
  nprobe: random centres in high-d are mutually orthogonal), so the default is two-level:
  topics -> scenes (``--scene-events`` events each) -> events, see ``make_vectors``.
  Queries are held-out draws from the same scenes, never inserted.
- "Ours" is ``MemoryBank.search`` (FAISS + SQLite row fetch); "raw" is ``index.search`` on the
  very same FAISS object with the same nprobe, one query at a time, interleaved with ours so
  drift (page cache, CPU clock) hits both alike. Their ratio is the cost of our layer.
- Recall@10 is against exact inner-product search over the same vectors (``IndexFlatIP``).
- Cold start and the rebuild from SQL run in a fresh subprocess, so their time and memory are
  the bank's alone. The OS page cache is warm: a process restart, not a reboot.
- The bank checkpoints (saves its FAISS cache) only where this script says so, and that save is
  timed separately: ingest measures the durable SQLite path. (With the shipped
  ``checkpoint_every=2000`` a 1 GB index would be rewritten every 2000 events.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil
from tqdm import tqdm

from bench_memory_report import TARGETS, markdown
from eventvstream.config import MemorySettings
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.store import EventStore

ROOT = Path(__file__).resolve().parents[1]
K = 10
GIB = 2**30


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(psutil.virtual_memory().total / GIB, 1),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "sqlite": sqlite3.sqlite_version,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def memory_gib() -> tuple[float, float]:
    """(RSS, peak RSS) of this process. The peak is VmHWM, not ``ru_maxrss``: a child started
    by ``subprocess`` inherits its parent's high-water mark in ``ru_maxrss`` on Linux."""
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(ln.split()[1]) for ln in status if ln.startswith("VmHWM"))
    return psutil.Process().memory_info().rss / GIB, hwm / 2**20


def make_vectors(n: int, args: argparse.Namespace, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors. Clustered: ``--clusters`` random topic directions; each scene is a
    topic plus gaussian noise of norm ``--topic-spread``; each event a scene plus noise of norm
    ``--spread`` (cos to its scene ≈ 1/√(1+spread²)). Scenes are seeded by ``--seed`` alone,
    so queries (another ``rng``) come from the very scenes that were inserted."""
    dim, out = args.dim, np.empty((n, args.dim), np.float32)
    base = np.random.default_rng(args.seed)
    n_scenes = max(1, args.events // args.scene_events)
    topics = _unit(base.standard_normal((args.clusters, dim), dtype=np.float32))
    scenes = topics[base.integers(0, args.clusters, n_scenes)]
    scenes = _unit(scenes + _noise(base, n_scenes, dim, args.topic_spread))
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        if args.vectors == "uniform":
            out[s : s + m] = _unit(rng.standard_normal((m, dim), dtype=np.float32))
        else:
            picked = scenes[rng.integers(0, n_scenes, m)]
            out[s : s + m] = _unit(picked + _noise(rng, m, dim, args.spread))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _noise(rng: np.random.Generator, m: int, dim: int, norm: float) -> np.ndarray:
    return rng.standard_normal((m, dim), dtype=np.float32) * np.float32(norm / np.sqrt(dim))


def settings_for(path: Path, args: argparse.Namespace) -> MemorySettings:
    # consolidate=False: random vectors never merge anyway, but a benchmark should not depend
    # on that; no automatic checkpoints (see the module docstring).
    fixed = dict(consolidate=False, checkpoint_every=10**12)
    return MemorySettings(
        data_dir=path, exact_max=args.exact_max, ivf_nprobe=args.nprobe[0], **fixed
    )


def event(i: int, vector: np.ndarray) -> dict[str, Any]:
    start = 2.0 * i  # an event every 2 s of stream time
    empty = dict(keyframes=[], labels=[], boundaries={})
    return dict(start=start, end=start + 1.5, frames=15, embedding=vector, **empty)


def pct(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def per_event_commits(path: Path, args: argparse.Namespace, vectors: np.ndarray) -> float:
    """Events/s when every event is its own durable commit (one fsync each), on a fresh bank."""
    with MemoryBank(settings_for(path, args), visual_dim=args.dim) as bank:
        t0 = time.perf_counter()
        for i, v in enumerate(tqdm(vectors, desc="1-per-commit", unit="ev", file=sys.stderr)):
            bank.add_many([event(i, v)], stream="bench")
        rate = len(vectors) / (time.perf_counter() - t0)
    shutil.rmtree(path)
    return rate


def ingest(bank: MemoryBank, vectors: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Batches through ``add_many``, each one fsync'd commit, acknowledged when the call
    returns; timed per call, so the acknowledgement latency and any slowdown with size show."""
    n, times, sizes, ids = len(vectors), [], [], np.empty(len(vectors), np.int64)
    bar = tqdm(total=n, desc="ingest", unit="ev", file=sys.stderr, smoothing=0.05)
    for b, s in enumerate(range(0, n, args.batch)):
        batch = [event(i, vectors[i]) for i in range(s, min(n, s + args.batch))]
        t0 = time.perf_counter()
        stored = bank.add_many(batch, stream=f"bench-{b % args.streams}")
        times.append(time.perf_counter() - t0)
        sizes.append(len(batch))
        ids[s : s + len(batch)] = [r.id for r in stored]
        bar.update(len(batch))
    bar.close()
    tenth = max(1, len(times) // 10)
    out = dict(ids=ids, seconds=sum(times), events_per_s=n / sum(times), batch_latency=pct(times))
    out["first_10pct_events_per_s"] = sum(sizes[:tenth]) / sum(times[:tenth])
    out["last_10pct_events_per_s"] = sum(sizes[-tenth:]) / sum(times[-tenth:])
    return out


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return len(np.intersect1d(found[found >= 0], truth)) / K


def recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, nprobe: int) -> float:
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = nprobe
    _, found = index.search(queries, K)
    return float(np.mean([overlap(f, t) for f, t in zip(found, truth, strict=True)]))


def latency(bank: MemoryBank, queries: np.ndarray, nprobe: int) -> dict[str, Any]:
    """One query at a time, ours and raw interleaved (order alternating), after a warm-up."""
    raw = bank.indexes["visual"]._index
    bank.indexes["visual"].nprobe = nprobe
    if isinstance(raw, faiss.IndexIVF):
        raw.nprobe = nprobe
    times: tuple[list[float], list[float]] = ([], [])  # raw, ours
    for q in queries[:20]:
        bank.search(q, k=K)
        raw.search(q[None], K)
    for j, q in enumerate(tqdm(queries, desc=f"latency nprobe={nprobe}", file=sys.stderr)):
        for ours in (True, False) if j % 2 else (False, True):
            t0 = time.perf_counter()
            bank.search(q, k=K) if ours else raw.search(q[None], K)
            times[ours].append(time.perf_counter() - t0)
    a, b = pct(times[1]), pct(times[0])
    ratios = dict(p50_ratio=a["p50_ms"] / b["p50_ms"], p99_ratio=a["p99_ms"] / b["p99_ms"])
    return dict(ours=a, raw=b, **ratios)


def scoped(
    bank: MemoryBank, queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    """Scoped searches (20 queries each): the scope is resolved in SQL and handed to FAISS as an
    id selector, so both its cost and its recall (vs exact search within the scope) matter."""
    mid = float(len(ids))  # stream time runs 0 .. 2n s; the middle hour:
    scopes = {
        "stream=bench-0": {"stream": "bench-0"},
        "stream=bench-0, 1 h window": {"stream": "bench-0", "t0": mid, "t1": mid + 3600},
    }
    out = {}
    for name, scope in scopes.items():
        allowed = bank.store.ids_in_scope(scope["stream"], None, scope.get("t0"), scope.get("t1"))
        times, found, rec = [], [], []
        for j, q in enumerate(queries[:20]):
            t0 = time.perf_counter()
            hits = bank.search(q, k=K, **scope)
            times.append(time.perf_counter() - t0)
            if len(allowed) == len(ids):
                best = truth[j]
            else:
                sub = vectors[np.searchsorted(ids, allowed)]
                best = allowed[np.argsort(-(sub @ q))[:K]]
            found.append(len(hits))
            rec.append(overlap(np.array([h.event.id for h in hits], np.int64), best))
        out[name] = dict(pct(times), hits=float(np.mean(found)), recall=float(np.mean(rec)))
        out[name]["events_in_scope"] = len(allowed)
    return out


def files_gib(path: Path, pattern: str) -> float:
    return sum(p.stat().st_size for p in path.glob(pattern)) / GIB


def reopen_child(args: argparse.Namespace) -> None:
    """Subprocess mode: open the bank cold (or rebuild it from SQL) and report JSON."""
    path = Path(args.reopen)
    if args.rebuild:
        for f in path.glob("*.faiss"):
            f.unlink()
    t0 = time.perf_counter()
    bank = MemoryBank(settings_for(path, args), visual_dim=args.dim)
    result: dict[str, Any] = {"open_s": time.perf_counter() - t0}
    result["rss_gib"], result["peak_gib"] = memory_gib()
    index = bank.indexes["visual"]._index
    result.update(kind=bank.indexes["visual"].kind, nlist=int(getattr(index, "nlist", 0)))
    queries, truth = np.load(path.parent / "queries.npy"), np.load(path.parent / "truth.npy")
    result["recall"] = {str(p): recall(index, queries, truth, p) for p in args.nprobe}
    bank.store.close()  # not close(): that would save the index again; the lock dies with us
    del bank, index
    if not args.rebuild:  # where the open time goes: each piece again
        t0 = time.perf_counter()
        store = EventStore(path / "evs.sqlite3")
        result["store_open_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()  # the row count IndexCaches.open checks the index against
        store.conn.execute("SELECT COUNT(*) FROM events WHERE embedding IS NOT NULL").fetchone()
        result["count_s"] = time.perf_counter() - t0
        store.close()
        t0 = time.perf_counter()
        faiss.read_index(str(path / "visual.faiss"))
        result["read_index_s"] = time.perf_counter() - t0
    print(json.dumps(result))


def reopen(path: Path, args: argparse.Namespace, rebuild: bool) -> dict[str, Any]:
    nprobe = ",".join(map(str, args.nprobe))
    flags = f"--dim {args.dim} --exact-max {args.exact_max} --nprobe {nprobe}"
    cmd = [sys.executable, __file__, "--reopen", str(path), *flags.split()]
    print(f"{'rebuild' if rebuild else 'cold start'} in a subprocess ...", file=sys.stderr)
    cmd += ["--rebuild"] if rebuild else []
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    if args.dir:
        base = Path(args.dir)
        base.mkdir(parents=True, exist_ok=True)
    else:
        (ROOT / ".bench").mkdir(exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="memory-", dir=ROOT / ".bench"))
    bank_dir = base / "bank"
    if bank_dir.exists():
        raise SystemExit(f"{bank_dir} already exists; give an empty --dir")
    r: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "machine": machine(),
        "args": vars(args),
    }
    print("generating vectors ...", file=sys.stderr)
    vectors = make_vectors(args.events, args, np.random.default_rng(args.seed + 1))
    queries = make_vectors(args.queries, args, np.random.default_rng(args.seed + 2))
    r["vectors"] = (
        "uniform random unit vectors (worst case for IVF)"
        if args.vectors == "uniform"
        else f"clustered synthetic unit vectors, two levels: {args.clusters:,} random topic "
        f"directions; {max(1, args.events // args.scene_events):,} scenes = topic + gaussian "
        f"noise of norm {args.topic_spread}; events = a random scene + noise of norm "
        f"{args.spread} (cos to scene ≈ {1 / np.sqrt(1 + args.spread**2):.2f}), normalised. "
        "Queries: held-out draws from the same scenes."
    )
    r["bench_arrays_gib"] = (vectors.nbytes + queries.nbytes) / GIB
    r["per_event_rate"] = per_event_commits(base / "per-event", args, vectors[: args.per_event])

    bank = MemoryBank(settings_for(bank_dir, args), visual_dim=args.dim)
    r["ingest"] = ingest(bank, vectors, args)
    ids = r["ingest"].pop("ids")
    r["rss_gib"], r["peak_gib"] = memory_gib()
    t0 = time.perf_counter()
    bank.checkpoint()
    r["checkpoint_s"], r["index_gib"] = time.perf_counter() - t0, files_gib(bank_dir, "*.faiss")

    print("exact ground truth ...", file=sys.stderr)
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vectors)
    truth = ids[exact.search(queries, K)[1]]
    del exact
    np.save(base / "queries.npy", queries)
    np.save(base / "truth.npy", truth)

    raw = bank.indexes["visual"]._index
    r.update(
        index_kind=bank.indexes["visual"].kind,
        index_vectors=int(raw.ntotal),
        nlist=int(getattr(raw, "nlist", 0)),
    )
    r["sweep"] = {
        str(p): {"recall": recall(raw, queries, truth, p), **latency(bank, queries, p)}
        for p in args.nprobe
    }
    good = [p for p in args.nprobe if r["sweep"][str(p)]["recall"] >= TARGETS["recall"]]
    r["chosen_nprobe"] = min(good) if good else max(args.nprobe)
    bank.indexes["visual"].nprobe = r["chosen_nprobe"]
    r["scoped"] = scoped(bank, queries, vectors, ids, truth)
    del vectors
    bank.close()
    r["db_gib"] = files_gib(bank_dir, "evs.sqlite3*")
    r["cold"] = reopen(bank_dir, args, rebuild=False)
    r["rebuild"] = reopen(bank_dir, args, rebuild=True)
    r["runtime_s"] = time.perf_counter() - started
    if not args.keep:
        shutil.rmtree(bank_dir if args.dir else base, ignore_errors=True)
    return r


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--events", type=int, default=1_000_000)
    add("--dim", type=int, default=256)
    add("--queries", type=int, default=1000)
    add("--batch", type=int, default=1000, help="events per add_many (= per durable commit)")
    add("--streams", type=int, default=1, help="batches go round-robin to this many streams")
    add("--dir", help="working directory (default: a new temp dir under .bench/)")
    add(
        "--nprobe",
        type=lambda s: sorted(int(x) for x in s.split(",")),
        default=[8, 16, 32, 64],
        help="comma-separated IVF nprobe values to sweep",
    )
    add("--exact-max", type=int, default=50_000, help="MemorySettings.exact_max")
    add("--vectors", choices=("clustered", "uniform"), default="clustered")
    add("--clusters", type=int, default=2000, help="topics")
    add("--scene-events", type=int, default=50, help="events per scene, on average")
    add("--topic-spread", type=float, default=1.0, help="noise norm, scene around topic")
    add("--spread", type=float, default=0.6, help="noise norm, event around scene")
    add("--per-event", type=int, default=2000, help="events in the 1-per-commit run")
    add("--seed", type=int, default=0)
    add("--keep", action="store_true", help="keep the bank directory afterwards")
    add("--json", help="also write every number to this JSON file")
    add("--reopen", help=argparse.SUPPRESS)
    add("--rebuild", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reopen:
        reopen_child(args)
        return
    result = run(args)
    print(markdown(result), end="")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
