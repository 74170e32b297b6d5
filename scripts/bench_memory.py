#!/usr/bin/env python
"""Memory-bank benchmark: durable ingest, query latency (ours vs raw FAISS), IVF recall,
cold start and resident memory, all in one run. Markdown on stdout, progress on stderr::

    python scripts/bench_memory.py                     # 1M events x 256-d (~15-20 min, 2 cores)
    python scripts/bench_memory.py --events 20000      # quick run
    python scripts/bench_memory.py --events 200000 --dim 1280 --json .bench/memory-1280.json

Why it is built this way:

- Vectors are *clustered* synthetic unit vectors (gaussian blobs around random centres), because
  real event embeddings cluster (scenes, places, people); uniform random high-d vectors have no
  neighbourhood structure and are a needlessly pessimistic case for IVF. Queries are held-out
  vectors from the same clusters, never inserted.
- "Ours" is ``MemoryBank.search`` (FAISS + SQLite row fetch); "raw" is ``index.search`` on the
  very same FAISS object with the same nprobe, one query at a time, interleaved with ours so
  drift (page cache, CPU frequency) hits both alike. Their ratio is the cost of our layer.
- Recall@10 is against exact inner-product search over the same vectors (``IndexFlatIP``).
- Cold start and the rebuild from SQL run in a fresh subprocess, so their time and RSS are the
  bank's alone (no benchmark arrays, a fresh interpreter). The OS page cache is warm: this is
  a process restart, not a machine reboot.
- The bank checkpoints (saves its FAISS cache) only when told here, and that save is timed
  separately: the ingest figure is the durable SQLite path, and a checkpoint every N changes
  would otherwise dominate it at 1M vectors (see ``--checkpoint-every``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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

from eventvstream.config import MemorySettings
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.store import EventStore

ROOT = Path(__file__).resolve().parents[1]
K = 10
TARGETS = {"p99_ms": 20.0, "overhead": 1.3, "recall": 0.95, "cold_s": 10.0}
GIB = 2**30


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(psutil.virtual_memory().total / GIB, 1),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def rss_gib() -> float:
    return psutil.Process().memory_info().rss / GIB


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def clustered(n: int, centres: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors: a uniformly chosen centre plus isotropic gaussian noise of expected
    norm ``spread``, normalised (cos to own centre ≈ 1/√(1+spread²))."""
    dim = centres.shape[1]
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        x = rng.standard_normal((m, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
        x += centres[rng.integers(0, len(centres), m)]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s : s + m] = x
    return out


def settings_for(path: Path, args: argparse.Namespace, checkpoint_every: int) -> MemorySettings:
    return MemorySettings(
        data_dir=path,
        consolidate=False,
        exact_max=args.exact_max,
        ivf_nprobe=args.nprobe[0],
        checkpoint_every=checkpoint_every,
    )


def event(i: int, vector: np.ndarray) -> dict[str, Any]:
    start = 2.0 * i
    return {
        "start": start,
        "end": start + 1.5,
        "frames": 15,
        "embedding": vector,
        "keyframes": [],
        "labels": [],
        "boundaries": {},
    }


def pct(values: list[float] | np.ndarray) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def per_event_commits(path: Path, args: argparse.Namespace, vectors: np.ndarray) -> float:
    """Events/s when every event is its own durable commit (one fsync each), on a fresh bank."""
    with MemoryBank(settings_for(path, args, 10**12), visual_dim=args.dim) as bank:
        t0 = time.perf_counter()
        for i, v in enumerate(tqdm(vectors, desc="1-per-commit", unit="ev", file=sys.stderr)):
            bank.add_many([event(i, v)], stream="bench")
        rate = len(vectors) / (time.perf_counter() - t0)
    shutil.rmtree(path)
    return rate


def ingest(bank: MemoryBank, vectors: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Batches of ``--batch`` through ``add_many``: each is one fsync'd commit, acknowledged
    when the call returns. Timed per call, so the per-batch (acknowledgement) latency shows."""
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
    return {
        "ids": ids,
        "seconds": float(sum(times)),
        "events_per_s": n / sum(times),
        "first_10pct_events_per_s": sum(sizes[:tenth]) / sum(times[:tenth]),
        "last_10pct_events_per_s": sum(sizes[-tenth:]) / sum(times[-tenth:]),
        "batch_latency": pct(times),
    }


def recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, nprobe: int) -> float:
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = nprobe
    _, found = index.search(queries, K)
    hits = [len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / K


def latency(bank: MemoryBank, queries: np.ndarray, nprobe: int) -> dict[str, Any]:
    """One query at a time, ours and raw interleaved (order alternating), after a warm-up."""
    raw = bank.indexes["visual"]._index
    bank.indexes["visual"].nprobe = nprobe
    if isinstance(raw, faiss.IndexIVF):
        raw.nprobe = nprobe
    ours, theirs = [], []
    for q in queries[:20]:
        bank.search(q, k=K)
        raw.search(q[None], K)
    for j, q in enumerate(tqdm(queries, desc=f"latency nprobe={nprobe}", file=sys.stderr)):
        for which in (0, 1) if j % 2 else (1, 0):
            t0 = time.perf_counter()
            if which:
                bank.search(q, k=K)
            else:
                raw.search(q[None], K)
            (ours if which else theirs).append(time.perf_counter() - t0)
    a, b = pct(ours), pct(theirs)
    return {
        "ours": a,
        "raw": b,
        "p50_ratio": a["p50_ms"] / b["p50_ms"],
        "p99_ratio": a["p99_ms"] / b["p99_ms"],
    }


def scoped(bank: MemoryBank, queries: np.ndarray, n: int) -> dict[str, Any]:
    """A few scoped searches: scope resolution is SQL + an id selector, outside the raw path."""
    out = {}
    span = 2.0 * n
    scopes = {
        "stream=bench-0 (whole stream)": {"stream": "bench-0"},
        "stream + 1 h window": {"stream": "bench-0", "t0": span / 2, "t1": span / 2 + 3600},
    }
    for name, scope in scopes.items():
        times = []
        for q in queries[:20]:
            t0 = time.perf_counter()
            bank.search(q, k=K, **scope)
            times.append(time.perf_counter() - t0)
        out[name] = pct(times)
    return out


def files_size(path: Path, pattern: str) -> float:
    return sum(p.stat().st_size for p in path.glob(pattern)) / GIB


def reopen_child(args: argparse.Namespace) -> None:
    """Subprocess mode: open the bank cold (or rebuild it from SQL) and report as JSON."""
    path = Path(args.reopen)
    if args.rebuild:
        for f in path.glob("*.faiss"):
            f.unlink()
    t0 = time.perf_counter()
    bank = MemoryBank(settings_for(path, args, 10**12), visual_dim=args.dim)
    result: dict[str, Any] = {
        "open_s": time.perf_counter() - t0,
        "rss_gib": rss_gib(),
        "peak_rss_gib": peak_rss_gib(),
    }
    index = bank.indexes["visual"]._index
    result.update(
        kind=bank.indexes["visual"].kind,
        vectors=int(index.ntotal),
        nlist=int(getattr(index, "nlist", 0)),
    )
    queries, truth = np.load(path.parent / "queries.npy"), np.load(path.parent / "truth.npy")
    result["recall"] = {str(p): recall(index, queries, truth, p) for p in args.nprobe}
    bank.store.close()  # no close(): that would save the index again; the lock dies with us
    if not args.rebuild:  # where the open time goes (each piece again, page cache warm)
        t0 = time.perf_counter()
        EventStore(path / "evs.sqlite3").close()
        result["store_open_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        faiss.read_index(str(path / "visual.faiss"))
        result["read_index_s"] = time.perf_counter() - t0
    print(json.dumps(result))


def reopen(path: Path, args: argparse.Namespace, rebuild: bool) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--reopen",
        str(path),
        "--dim",
        str(args.dim),
        "--exact-max",
        str(args.exact_max),
        "--nprobe",
        ",".join(map(str, args.nprobe)),
    ]
    print(f"{'rebuild' if rebuild else 'cold start'} in a subprocess ...", file=sys.stderr)
    done = subprocess.run(
        cmd + (["--rebuild"] if rebuild else []),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "**target met**" if ok else "**target NOT met**"


def markdown(r: dict[str, Any]) -> str:
    a, m, ing = r["args"], r["machine"], r["ingest"]
    lines = [
        f"# Memory bank benchmark — {a['events']:,} events × {a['dim']}-d",
        "",
        f"- Date: {r['date']}  ·  total runtime {r['runtime_s'] / 60:.1f} min",
        f"- Command: `{r['command']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; Python "
        f"{m['python']}, faiss {m['faiss']} ({m['faiss_threads']} threads), SQLite {m['sqlite']}",
        f"- Vectors: {r['vectors']}",
        f"- Dimension: {a['dim']}. The default profile's EfficientNet encoder makes **1280-d** "
        "vectors; 1M × 1280 float32 is 5 GB of vectors (plus as much again in SQLite). "
        "Re-run with `--dim 1280` (at a smaller `--events`) for that case.",
        f"- Bank: exact index up to {a['exact_max']:,} vectors, then IVF-Flat; "
        f"{a['streams']} stream(s); batches of {a['batch']:,} events, one durable commit each; "
        "checkpoints only where timed below.",
        "",
        "## Ingest (durable: SQLite WAL, synchronous=FULL)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| events/s, batches of {a['batch']:,} (one fsync'd commit per batch) | "
        f"{ing['events_per_s']:,.0f} ({ing['seconds']:.0f} s total) |",
        f"| events/s, first 10% of batches / last 10% | {ing['first_10pct_events_per_s']:,.0f}"
        f" / {ing['last_10pct_events_per_s']:,.0f} |",
        "| per-batch acknowledgement latency p50 / p95 / p99 | "
        + " / ".join(f"{ing['batch_latency'][k]:.0f} ms" for k in ("p50_ms", "p95_ms", "p99_ms"))
        + " |",
        f"| events/s, 1 event per commit ({a['per_event']:,} events, fresh bank) | "
        f"{r['per_event_rate']:,.0f} |",
        f"| checkpoint (save the {r['index_kind']} index, {r['index_gib']:.2f} GiB) | "
        f"{r['checkpoint_s']:.1f} s |",
        f"| close() (saves again) | {r['close_s']:.1f} s |",
        f"| DB on disk (evs.sqlite3 + WAL) | {r['db_gib']:.2f} GiB |",
        f"| RSS after ingest (bench process, includes {r['bench_arrays_gib']:.2f} GiB of "
        f"benchmark arrays) / peak | {r['rss_after_ingest_gib']:.2f} / "
        f"{r['peak_after_ingest_gib']:.2f} GiB |",
        "",
        f"## Search: top-{K}, one query at a time, {a['queries']:,} held-out queries",
        "",
        f"Index: {r['index_kind']}"
        + (f", nlist={r['nlist']}" if r["nlist"] else "")
        + f", {r['index_vectors']:,} vectors. Recall@{K} vs exact `IndexFlatIP`."
        + (" (Exact index: nprobe has no effect.)" if r["index_kind"] == "exact" else ""),
        "",
        "| nprobe | recall@10 | ours p50 / p95 / p99 ms | raw FAISS p50 / p95 / p99 ms "
        "| overhead p50 (ms) | overhead p99 |",
        "|---|---|---|---|---|---|",
    ]
    for p, row in r["sweep"].items():
        o, w = row["ours"], row["raw"]
        mark = " ← chosen" if p == str(r["chosen_nprobe"]) else ""
        lines.append(
            f"| {p}{mark} | {row['recall']:.3f} | {o['p50_ms']:.2f} / {o['p95_ms']:.2f} / "
            f"{o['p99_ms']:.2f} | {w['p50_ms']:.2f} / {w['p95_ms']:.2f} / {w['p99_ms']:.2f} | "
            f"{row['p50_ratio']:.2f}× (+{o['p50_ms'] - w['p50_ms']:.2f}) | "
            f"{row['p99_ratio']:.2f}× |"
        )
    lines += [
        "",
        "Scoped searches (20 queries each; scope = SQL id list + FAISS id selector):",
        "",
        "| scope | p50 / p99 ms |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v['p50_ms']:.1f} / {v['p99_ms']:.1f} |" for k, v in r["scoped"].items()]
    lines += ["", "## Cold start (fresh process, warm OS page cache)", ""]
    lines += ["| measure | open | RSS / peak | index | recall@10 per nprobe |", "|---" * 5 + "|"]
    for name, c in (
        ("re-open (saved index)", r["cold"]),
        ("rebuild from SQL (.faiss deleted)", r["rebuild"]),
    ):
        if "error" in c:
            lines.append(f"| {name} | failed: {c['error'][-300:]!r} | | | |")
            continue
        rec = ", ".join(f"{p}: {v:.3f}" for p, v in c["recall"].items())
        kind = c["kind"] + (f" nlist={c['nlist']}" if c["nlist"] else "")
        lines.append(
            f"| {name} | {c['open_s']:.1f} s | {c['rss_gib']:.2f} / "
            f"{c['peak_rss_gib']:.2f} GiB | {kind} | {rec} |"
        )
    c = r["cold"]
    if "store_open_s" in c:
        lines += [
            "",
            f"Where re-open time goes: SQLite open + `PRAGMA quick_check` "
            f"{c['store_open_s']:.1f} s; `faiss.read_index` {c['read_index_s']:.1f} s; "
            "the rest is replay and the row count check.",
        ]
    lines += ["", "## Targets", ""]
    ch = r["sweep"][str(r["chosen_nprobe"])]
    lines += [
        f"- recall@10 ≥ {TARGETS['recall']} (nprobe={r['chosen_nprobe']}): {ch['recall']:.3f} — "
        f"{verdict(ch['recall'] >= TARGETS['recall'])}",
        f"- p99 ≤ {TARGETS['p99_ms']:.0f} ms (ours): {ch['ours']['p99_ms']:.2f} ms — "
        f"{verdict(ch['ours']['p99_ms'] <= TARGETS['p99_ms'])}",
        f"- overhead ≤ {TARGETS['overhead']}× (p50 ratio): {ch['p50_ratio']:.2f}× — "
        f"{verdict(ch['p50_ratio'] <= TARGETS['overhead'])}; p99 ratio {ch['p99_ratio']:.2f}×",
    ]
    if "open_s" in c:
        lines.append(
            f"- cold start ≤ {TARGETS['cold_s']:.0f} s: {c['open_s']:.1f} s — "
            f"{verdict(c['open_s'] <= TARGETS['cold_s'])}"
        )
    if "open_s" in r["rebuild"]:
        lines.append(f"- (no target) rebuild from SQL: {r['rebuild']['open_s']:.1f} s")
    lines += ["", f"Measured at {a['events']:,} events only; nothing here is extrapolated."]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    made = args.dir is None
    if args.dir:
        base = Path(args.dir)
        base.mkdir(parents=True, exist_ok=True)
    else:
        (ROOT / ".bench").mkdir(exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="memory-", dir=ROOT / ".bench"))
    bank_dir = base / "bank"
    if bank_dir.exists():
        raise SystemExit(f"{bank_dir} already exists; give an empty --dir")
    result: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "machine": machine(),
        "args": vars(args),
    }
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    print("generating vectors ...", file=sys.stderr)
    vectors = clustered(args.events, centres, args.spread, rng)
    queries = clustered(args.queries, centres, args.spread, np.random.default_rng(args.seed + 1))
    cos = 1 / np.sqrt(1 + args.spread**2)
    result["vectors"] = (
        f"clustered synthetic unit vectors: {args.clusters:,} gaussian clusters "
        f"(uniform random centres), isotropic noise of norm ≈ {args.spread} "
        f"(cos to own centre ≈ {cos:.2f}), normalised; queries are "
        "held-out draws from the same clusters"
    )
    result["bench_arrays_gib"] = (vectors.nbytes + queries.nbytes) / GIB
    result["per_event_rate"] = per_event_commits(
        base / "per-event", args, vectors[: args.per_event]
    )

    bank = MemoryBank(settings_for(bank_dir, args, 10**12), visual_dim=args.dim)
    ing = ingest(bank, vectors, args)
    ids = ing.pop("ids")
    result["ingest"] = ing
    result["rss_after_ingest_gib"], result["peak_after_ingest_gib"] = rss_gib(), peak_rss_gib()
    t0 = time.perf_counter()
    bank.checkpoint()
    result["checkpoint_s"] = time.perf_counter() - t0
    result["index_gib"] = files_size(bank_dir, "*.faiss")

    print("exact ground truth ...", file=sys.stderr)
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vectors)
    _, truth_pos = exact.search(queries, K)
    del exact, vectors
    truth = ids[truth_pos]
    np.save(base / "queries.npy", queries)
    np.save(base / "truth.npy", truth)

    raw = bank.indexes["visual"]._index
    result.update(
        index_kind=bank.indexes["visual"].kind,
        index_vectors=int(raw.ntotal),
        nlist=int(getattr(raw, "nlist", 0)),
    )
    sweep = {}
    for p in args.nprobe:
        sweep[str(p)] = {"recall": recall(raw, queries, truth, p), **latency(bank, queries, p)}
    result["sweep"] = sweep
    good = [p for p in args.nprobe if sweep[str(p)]["recall"] >= TARGETS["recall"]]
    result["chosen_nprobe"] = min(good) if good else max(args.nprobe)
    bank.indexes["visual"].nprobe = result["chosen_nprobe"]
    result["scoped"] = scoped(bank, queries, args.events)
    t0 = time.perf_counter()
    bank.close()
    result["close_s"] = time.perf_counter() - t0
    result["db_gib"] = files_size(bank_dir, "evs.sqlite3*")

    result["cold"] = reopen(bank_dir, args, rebuild=False)
    result["rebuild"] = reopen(bank_dir, args, rebuild=True)
    result["runtime_s"] = time.perf_counter() - started
    if not args.keep:
        shutil.rmtree(base if made else bank_dir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1000, help="events per add_many (per commit)")
    ap.add_argument("--streams", type=int, default=1, help="batches go round-robin to streams")
    ap.add_argument("--dir", help="working directory (default: a temp dir under .bench/)")
    ap.add_argument(
        "--nprobe",
        type=lambda s: sorted(int(x) for x in s.split(",")),
        default=[8, 16, 32, 64],
        help="comma-separated IVF nprobe values to sweep",
    )
    ap.add_argument("--exact-max", type=int, default=50_000, help="MemorySettings.exact_max")
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--spread", type=float, default=0.6, help="noise norm around each centre")
    ap.add_argument("--per-event", type=int, default=2000, help="events in the 1-per-commit run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the bank directory afterwards")
    ap.add_argument("--json", help="also write every number to this JSON file")
    ap.add_argument("--reopen", help=argparse.SUPPRESS)
    ap.add_argument("--rebuild", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reopen:
        reopen_child(args)
        return
    result = run(args)
    print(markdown(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
