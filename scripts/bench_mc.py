#!/usr/bin/env python
"""OVO-Bench and StreamingBench through the live API: replay each video at real speed up to each
question's time, ask it there, score the multiple-choice answer.

Questions are read by ``mc_readers`` (formats in its docstring; how to mount the real data in
docs/benchmarks.md). The items of one video share one replay: the video streams to a real
server over the WebSocket at real-time pace, and each question goes out as a ``query`` message
when the stream clock reaches its time — the frames keep coming, as a live client's would — and
the replay stops after the last one. The answer is mapped to an option by
``mc_readers.choose`` and scored; reported per task with the chance level, the share of answers
that picked an option at all, and the answer latency p50/p95.

    python scripts/bench_mc.py --ovo /data/ovo/ovo_bench_new.json --ovo-videos /data/ovo/videos
    python scripts/bench_mc.py --streamingbench /data/sb/questions_real.json \\
        --streamingbench-videos /data/sb --limit 50 --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_qa import percentile
from live_client import Ask, evs_server, replay
from mc_readers import MCItem, chance, choose, question_text, read_ovo, read_streamingbench


def stream_id(video: Path) -> str:
    """A valid stream id per video (``[A-Za-z0-9._-]``, at most 64 characters)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video.stem)[:40]
    digest = hashlib.sha1(str(video).encode()).hexdigest()[:10]
    return f"mc-{stem}-{digest}"


async def run_video(
    url: str, video: Path, items: list[MCItem], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Replay ``video`` to the last question's time, asking each at its own; score them."""
    asks = [Ask(f"q{k}", question_text(i, args.with_options), i.at) for k, i in enumerate(items)]
    done = await replay(
        url, stream_id(video), video, asks, speed=args.speed, generate=args.captions,
        until=max(i.at for i in items) + args.margin_s, fps=args.fps,
    )  # fmt: skip
    rows = []
    for k, item in enumerate(items):
        reply = done.replies[f"q{k}"]
        evidence = " ".join(c.get("caption") or "" for c in reply.citations)
        picked = choose(reply.text, item.options, evidence) if reply.error is None else None
        rows.append({
            "source": item.source, "id": item.id, "task": item.task, "mode": item.mode,
            "video": str(item.video), "at": item.at, "question": item.question,
            "answer": reply.text, "error": reply.error, "picked": picked, "right": item.answer,
            "ok": picked == item.answer, "latency_s": reply.latency_s,
            "options": len(item.options), "asked_at_stream_s": reply.sent_at,
            "cited": [[c["id"], c["start"], c["end"]] for c in reply.citations],
        })  # fmt: skip
    return rows


def evaluate(url: str, items: list[MCItem], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every item, one replay per video (videos one after another)."""
    by_video: dict[Path, list[MCItem]] = defaultdict(list)
    for item in items:
        by_video[item.video].append(item)
    rows: list[dict[str, Any]] = []
    for video, group in by_video.items():
        if not video.is_file():
            print(f"missing video {video}: {len(group)} question(s) not asked", file=sys.stderr)
            rows += [
                {"source": i.source, "id": i.id, "task": i.task, "mode": i.mode,
                 "error": "missing video", "ok": False, "picked": None,
                 "latency_s": float("nan"), "options": len(i.options)}
                for i in group
            ]  # fmt: skip
            continue
        print(f"replaying {video.name} ({len(group)} question(s)) ...", file=sys.stderr)
        rows += asyncio.run(run_video(url, video, sorted(group, key=lambda i: i.at), args))
    return rows


def report(rows: list[dict[str, Any]], items: list[MCItem]) -> list[str]:
    """Per source/mode/task: accuracy, chance, answered share; latency over all."""
    lines = ["| benchmark | mode | task | accuracy | chance | picked an option | n |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for k, row in enumerate(rows):
        for key in ((row["source"], row["mode"], row["task"]), (row["source"], row["mode"], "all")):
            groups[key].append(k)
    for (source, mode, task), ks in sorted(groups.items()):
        sel = [rows[k] for k in ks]
        acc = sum(r["ok"] for r in sel) / len(sel)
        floor = sum(1 / r["options"] for r in sel) / len(sel)
        picked = sum(r["picked"] is not None for r in sel) / len(sel)
        lines.append(f"| {source} | {mode} | {task} | {acc:.2f} | {floor:.2f} | {picked:.2f} "
                     f"| {len(sel)} |")  # fmt: skip
    lat = [r["latency_s"] for r in rows if r.get("error") is None]
    errors = sum(r.get("error") is not None for r in rows)
    lines += ["", f"- answer latency p50 {percentile(lat, 50):.2f} s, p95 "
              f"{percentile(lat, 95):.2f} s over {len(lat)} answers; errors {errors}; "
              f"chance over all items {chance(items):.2f}"]  # fmt: skip
    return lines


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[str]:
    if args.url:
        yield args.url
    else:
        with evs_server(args.out.resolve() / "memory", args.profile) as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ovo", type=Path, help="OVO-Bench question file (ovo_bench_new.json)")
    parser.add_argument("--ovo-videos", type=Path, help="folder the 'video' paths are under")
    parser.add_argument("--ovo-modes", default="backward,realtime", help="backward and/or realtime")
    parser.add_argument("--streamingbench", type=Path, help="StreamingBench questions_*.json")
    parser.add_argument("--streamingbench-videos", type=Path, help="folder of 'video_path'")
    parser.add_argument("--limit", type=int, help="at most this many questions per file")
    parser.add_argument("--tasks", help="comma-separated task codes / types to keep")
    parser.add_argument("--url", help="an already running server (else one is started)")
    parser.add_argument("--profile", default=None, help="profile of the started server")
    parser.add_argument("--out", type=Path, default=Path(".bench/mc"))
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--margin-s", type=float, default=0.0, help="stream past the last ask")
    parser.add_argument("--captions", action="store_true", help="caption events (generate)")
    parser.add_argument("--with-options", action="store_true", help="send the options too")
    parser.add_argument("--json", type=Path, help="write every answer and score here")
    args = parser.parse_args()
    if not args.ovo and not args.streamingbench:
        parser.error("give --ovo and/or --streamingbench")
    items: list[MCItem] = []
    for path, reader in ((args.ovo, "ovo"), (args.streamingbench, "sb")):
        if path is None:
            continue
        if reader == "ovo":
            modes = tuple(m.strip() for m in args.ovo_modes.split(","))
            got, skipped = read_ovo(path, args.ovo_videos, modes)
        else:
            got, skipped = read_streamingbench(path, args.streamingbench_videos)
        if args.tasks:
            got = [i for i in got if i.task in args.tasks.split(",")]
        items += got[: args.limit] if args.limit else got
        print(f"{path}: {len(got)} question(s), {len(skipped)} skipped", file=sys.stderr)
    started = time.perf_counter()
    with server(args) as url:
        rows = evaluate(url, items, args)
    lines = report(rows, items)
    lines.append(f"- wall {time.perf_counter() - started:.0f} s")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
