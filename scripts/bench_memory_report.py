"""The Markdown report of ``scripts/bench_memory.py`` (its results dict in, the report out) and
the targets it is judged against; apart from the measuring so each file has one job."""

from __future__ import annotations

from typing import Any

TARGETS = {"p99_ms": 20.0, "overhead": 1.3, "recall": 0.95, "cold_s": 10.0}

REPORT = """\
# Memory bank benchmark — {a[events]:,} events × {a[dim]}-d

- Date: {date} · total runtime {minutes:.1f} min
- Command: `{command}`
- Machine: {m[cpu]}, {m[cores]} cores, {m[ram_gib]} GiB RAM; Python {m[python]},
  faiss {m[faiss]} ({m[faiss_threads]} threads), SQLite {m[sqlite]}
- Vectors: {vectors}
- Dimension {a[dim]}. The default profile's EfficientNet encoder makes **1280-d** vectors:
  1M × 1280 float32 is 5 GB (and as much again in SQLite); see `--dim 1280`.
- Bank: exact index up to {a[exact_max]:,} vectors, then IVF-Flat; {a[streams]} stream(s);
  batches of {a[batch]:,} events, one durable commit each.

## Ingest (durable: SQLite WAL, synchronous=FULL)

| measure | value |
|---|---|
| events/s, batches of {a[batch]:,} (one fsync'd commit each) | {i[events_per_s]:,.0f} \
({i[seconds]:.0f} s in add_many) |
| events/s in the first / last 10% of batches | {i[first_10pct_events_per_s]:,.0f} / \
{i[last_10pct_events_per_s]:,.0f} |
| per-batch acknowledgement latency p50 / p95 / p99 | {b[p50_ms]:.0f} / {b[p95_ms]:.0f} / \
{b[p99_ms]:.0f} ms |
| events/s, 1 event per commit ({a[per_event]:,} events, fresh bank) | {per_event_rate:,.0f} |
| checkpoint (save the {index_kind} index, {index_gib:.2f} GiB) | {checkpoint_s:.1f} s |
| DB on disk (evs.sqlite3 + WAL) | {db_gib:.2f} GiB |
| RSS / peak after ingest (bench process; {bench_arrays_gib:.2f} GiB of it are the \
benchmark's own vectors) | {rss_gib:.2f} / {peak_gib:.2f} GiB |

## Search: top-10, one query at a time, {a[queries]:,} held-out queries

Index: {index_kind}{nlist_text}, {index_vectors:,} vectors. Recall@10 vs exact `IndexFlatIP`.\
{exact}

| nprobe | recall@10 | ours p50 / p95 / p99 ms | raw FAISS p50 / p95 / p99 ms | \
overhead p50 (+ms) | overhead p99 |
|---|---|---|---|---|---|
{sweep_rows}

Scoped searches at nprobe={chosen_nprobe} (20 queries each; recall vs exact search within the
scope):

| scope | events in scope | p50 / p99 ms | hits returned (of 10) | recall@10 |
|---|---|---|---|---|
{scoped_rows}

## Cold start (fresh process, warm OS page cache)

| open | time | RSS / peak | index | recall@10 per nprobe |
|---|---|---|---|---|
{cold_rows}
{pieces}
## Targets

- recall@10 ≥ 0.95 (nprobe={chosen_nprobe}, the smallest meeting it): {c[recall]:.3f} — {t[0]}
- p99 ≤ 20 ms (ours): {c[ours][p99_ms]:.2f} ms — {t[1]}
- overhead ≤ 1.3× (p50 ratio): {c[p50_ratio]:.2f}× — {t[2]} (p99 ratio {c[p99_ratio]:.2f}×)
- cold start ≤ 10 s: {cold_s} — {t[3]}
- rebuild from SQL (no target): {rebuild_s}

Measured at {a[events]:,} events; nothing here is extrapolated.
"""


def markdown(r: dict[str, Any]) -> str:
    sweep = []
    for p, row in r["sweep"].items():
        o, w = row["ours"], row["raw"]
        sweep.append(
            f"| {p}{' ← chosen' if p == str(r['chosen_nprobe']) else ''} | {row['recall']:.3f} "
            f"| {o['p50_ms']:.2f} / {o['p95_ms']:.2f} / {o['p99_ms']:.2f} | {w['p50_ms']:.2f} / "
            f"{w['p95_ms']:.2f} / {w['p99_ms']:.2f} | {row['p50_ratio']:.2f}× "
            f"(+{o['p50_ms'] - w['p50_ms']:.2f}) | {row['p99_ratio']:.2f}× |"
        )
    scoped = [
        f"| {k} | {v['events_in_scope']:,} | {v['p50_ms']:.1f} / {v['p99_ms']:.1f} | "
        f"{v['hits']:.1f} | {v['recall']:.3f} |"
        for k, v in r["scoped"].items()
    ]
    cold = []
    for name, c in (("re-open (saved index)", r["cold"]), ("rebuild from SQL", r["rebuild"])):
        if "error" in c:
            cold.append(f"| {name} | failed: {c['error'][-300:]!r} | | | |")
            continue
        rec = ", ".join(f"{p}: {v:.3f}" for p, v in c["recall"].items())
        kind = c["kind"] + (f" nlist={c['nlist']}" if c["nlist"] else "")
        cold.append(
            f"| {name} | {c['open_s']:.1f} s | {c['rss_gib']:.2f} / {c['peak_gib']:.2f} GiB | "
            f"{kind} | {rec} |"
        )
    c, co, rb = r["sweep"][str(r["chosen_nprobe"])], r["cold"], r["rebuild"]
    met = [
        c["recall"] >= TARGETS["recall"],
        c["ours"]["p99_ms"] <= TARGETS["p99_ms"],
        c["p50_ratio"] <= TARGETS["overhead"],
        co.get("open_s", 1e9) <= TARGETS["cold_s"],
    ]
    pieces = (
        f"\nRe-open pieces, timed again separately: SQLite open + `PRAGMA quick_check` "
        f"{co['store_open_s']:.1f} s; row count {co['count_s']:.1f} s; `faiss.read_index` "
        f"{co['read_index_s']:.1f} s.\n"
        if "store_open_s" in co
        else ""
    )
    return REPORT.format(
        **r,
        a=r["args"],
        m=r["machine"],
        i=r["ingest"],
        b=r["ingest"]["batch_latency"],
        c=c,
        minutes=r["runtime_s"] / 60,
        nlist_text=f", nlist={r['nlist']}" if r["nlist"] else "",
        exact=" Exact index: nprobe has no effect." if r["index_kind"] == "exact" else "",
        sweep_rows="\n".join(sweep),
        scoped_rows="\n".join(scoped),
        cold_rows="\n".join(cold),
        pieces=pieces,
        t=["**target met**" if ok else "**target NOT met**" for ok in met],
        cold_s=f"{co['open_s']:.1f} s" if "open_s" in co else "failed",
        rebuild_s=f"{rb['open_s']:.1f} s" if "open_s" in rb else "failed",
    )
