#!/usr/bin/env python
"""Language benchmark: when to run the decoder (event vs interval vs frame triggers), what it
costs, and how fast captions arrive. Markdown on stdout, progress on stderr::

    python scripts/bench_language.py                       # policies on the benchmark set
    python scripts/bench_language.py --realtime 4          # + caption latency, 4 clips paced live
    python scripts/bench_language.py --long10              # + `evs run` on a 10-minute clip
    python scripts/bench_language.py --json .bench/language.json

Videos come from ``scripts/make_bench_videos.py`` (``.bench/videos/manifest.json``).

What is measured, and why this way:

- **Decoder calls** per policy on the same videos with the same decoder: ``event`` captions
  each event, ``interval`` every ``--interval`` seconds (1 s: the baseline the Event-VStream
  paper beats), ``frame`` every sampled frame (2 fps). The ratio interval/event is the target
  (>= 5x).
- **Redundancy**: share of consecutive caption pairs (in time order, per video) whose
  sentence embeddings (all-MiniLM-L6-v2) have cosine > 0.9 — near-duplicate captions are
  decoder time spent saying nothing new.
- **Decoder time**: seconds inside the decoder, summed, per policy.
- **Caption latency** (``--realtime``): clips are replayed at real-time pace (an event is handed
  to the caption worker when the wall clock reaches its end, as on a live stream), and the time
  from then to the caption stored in memory is recorded: queueing + decoding, p50 and p95.
- **evs run on a 10-minute clip** (``--long10``): the real CLI in a subprocess, wall time versus
  the clip's duration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_common import finish, run_record
from eventvstream.config import Settings, load_settings
from eventvstream.language import load_decoder
from eventvstream.memory import MemoryBank
from eventvstream.perception import load_text_embedder
from eventvstream.pipeline import Segmenter
from eventvstream.pipeline.ingest import BaseListener, CaptionDone, Ingest

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT / ".bench" / "videos"
SKIP_CATEGORIES = {"long", "throughput"}
REDUNDANT_COS = 0.9


def with_language(settings: Settings, **changes: Any) -> Settings:
    language = settings.language.model_copy(update=changes)
    return settings.model_copy(update={"language": language})


def run_policy(
    video: Path,
    settings: Settings,
    segmenter: Segmenter,
    decoder: Any,
    embedder: Any,
    *,
    realtime: bool = False,
) -> dict[str, Any]:
    """Segment ``video`` under ``settings.language.trigger``, caption every unit, return the
    calls, captions (time order), decoder seconds and latencies."""
    results: list[CaptionDone] = []

    class Collect(BaseListener):
        def caption_done(self, caption: CaptionDone) -> None:
            results.append(caption)

    segmenter.settings = settings
    with tempfile.TemporaryDirectory() as tmp:
        memory = settings.memory.model_copy(update={"data_dir": Path(tmp)})
        with MemoryBank(memory, visual_dim=segmenter.encoder.info.dim) as bank:
            # The same ingest step as `evs run` and the server (store, describe, caption).
            ingest = Ingest(bank, embedder, decoder, settings.language, (Collect(),))
            worker = ingest.captioner
            assert worker is not None
            units = 0
            started = time.perf_counter()
            for event in segmenter.segment(video):
                if realtime:  # a live stream knows the boundary when the video reaches it
                    delay = event.end - (time.perf_counter() - started)
                    if delay > 0:
                        time.sleep(delay)
                ingest.store(event, stream=video.stem)
                units += 1
            ingest.close(drain=True)
            stats = worker.stats
    results.sort(key=lambda r: r.event.event.start)
    captions = [r.caption for r in results]
    return {
        "units": units,
        "calls": stats.captioned + stats.failed,
        "skipped": stats.skipped,
        "fallbacks": stats.fallbacks,
        "decode_s": stats.decode_s,
        "latencies": [r.latency_s for r in results],
        "captions": captions,
    }


def redundancy(captions: list[str], embedder: Any) -> tuple[int, int]:
    """(near-duplicate consecutive pairs, pairs)."""
    if len(captions) < 2:
        return 0, 0
    vectors = embedder.embed(captions)
    cos = np.sum(vectors[1:] * vectors[:-1], axis=1)
    return int(np.sum(cos > REDUNDANT_COS)), len(captions) - 1


def load_manifest(limit: int | None) -> list[dict[str, Any]]:
    manifest = VIDEOS / "manifest.json"
    if not manifest.is_file():
        sys.exit("no benchmark videos: run `python scripts/make_bench_videos.py` first")
    entries = [
        e
        for e in json.loads(manifest.read_text())["videos"]
        if e.get("category") not in SKIP_CATEGORIES and "720p" not in e["video"]
    ]
    return entries[:limit] if limit else entries


def bench_policies(
    args: argparse.Namespace, settings: Settings, decoder: Any, embedder: Any
) -> dict[str, Any]:
    segmenter = Segmenter(settings)
    entries = load_manifest(args.max_videos)
    totals: dict[str, dict[str, Any]] = {}
    per_video = []
    for n, entry in enumerate(entries):
        video = VIDEOS / entry["video"]
        row: dict[str, Any] = {"video": entry["video"], "duration": entry["duration"]}
        for policy in args.policies:
            if policy == "frame" and n >= args.frame_videos:
                continue
            policy_settings = with_language(settings, trigger=policy, interval_s=args.interval)
            result = run_policy(video, policy_settings, segmenter, decoder, embedder)
            dup, pairs = redundancy(result["captions"], embedder)
            row[policy] = {k: result[k] for k in ("calls", "decode_s", "fallbacks")} | {
                "redundant_pairs": dup,
                "pairs": pairs,
                "sample": result["captions"][:3],
            }
            total = totals.setdefault(
                policy,
                {"calls": 0, "decode_s": 0.0, "dup": 0, "pairs": 0, "seconds": 0.0, "videos": 0},
            )
            total["calls"] += result["calls"]
            total["decode_s"] += result["decode_s"]
            total["dup"] += dup
            total["pairs"] += pairs
            total["seconds"] += entry["duration"]
            total["videos"] += 1
            print(
                f"{entry['video']:<22} {policy:<8} calls {result['calls']:4d}  "
                f"decode {result['decode_s']:6.1f}s  redundant {dup}/{pairs}",
                file=sys.stderr,
                flush=True,
            )
        per_video.append(row)
    return {"totals": totals, "videos": per_video}


def bench_realtime(
    args: argparse.Namespace, settings: Settings, decoder: Any, embedder: Any
) -> dict[str, Any]:
    segmenter = Segmenter(settings)
    latencies: list[float] = []
    entries = [e for e in load_manifest(None) if e.get("category") == "cuts"][: args.realtime]
    for entry in entries:
        result = run_policy(
            VIDEOS / entry["video"],
            with_language(settings, trigger="event"),
            segmenter,
            decoder,
            embedder,
            realtime=True,
        )
        latencies += result["latencies"]
        print(
            f"{entry['video']:<22} realtime  {len(result['latencies'])} captions",
            file=sys.stderr,
            flush=True,
        )
    lat = np.array(latencies)
    return {
        "videos": [e["video"] for e in entries],
        "captions": len(lat),
        "p50_s": float(np.percentile(lat, 50)),
        "p95_s": float(np.percentile(lat, 95)),
        "max_s": float(lat.max()),
    }


def bench_long10(args: argparse.Namespace) -> dict[str, Any]:
    from eventvstream import testdata

    video = VIDEOS / "long_10min.mp4"
    if not video.is_file():
        testdata.make_long_video(video, hours=10 / 60, truth_path=VIDEOS / "long_10min.json")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "eventvstream.cli",
            "run",
            str(video),
            "--data-dir",
            tmp,
            "--json",
            "--progress",
            "off",
        ]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"evs run failed: {done.stderr[-2000:]}")
        lines = [json.loads(x) for x in done.stdout.splitlines()]
        report = json.loads((Path(tmp) / "reports" / video.stem / "timeline.json").read_text())
    duration = report["meta"]["duration_s"]
    return {
        "command": "evs run long_10min.mp4 --json",
        "duration_s": duration,
        "wall_s": wall,
        "speed": duration / wall,
        "stored": sum(1 for x in lines if x["type"] == "stored"),
        "captions": sum(1 for x in lines if x["type"] == "caption"),
        "extra": report["meta"].get("extra", {}),
    }


def markdown(result: dict[str, Any]) -> str:
    out = []
    machine = result["machine"]
    out.append(
        f"Machine: {machine}; load average {result['load_start']} at the start, "
        f"{result['load_end']} at the end; command: `{result['command']}`; {result['created']}\n"
    )
    policies = result.get("policies")
    if policies:
        totals = policies["totals"]
        out.append(
            "| policy | videos | video s | decoder calls | calls / min | decoder s "
            "| redundant consecutive captions |"
        )
        out.append("|---|---|---|---|---|---|---|")
        for name, t in totals.items():
            share = t["dup"] / t["pairs"] if t["pairs"] else 0.0
            out.append(
                f"| {name} | {t['videos']} | {t['seconds']:.0f} | {t['calls']} | "
                f"{60 * t['calls'] / max(t['seconds'], 1e-9):.1f} | {t['decode_s']:.0f} | "
                f"{share:.2f} ({t['dup']}/{t['pairs']}) |"
            )
        if "event" in totals and "interval" in totals:
            ev, iv = totals["event"], totals["interval"]
            ratio = (iv["calls"] / iv["seconds"]) / max(ev["calls"] / ev["seconds"], 1e-9)
            out.append(f"\ninterval / event decoder calls per video-second: **{ratio:.1f}x**")
    rt = result.get("realtime")
    if rt:
        out.append(
            f"\nCaption latency, boundary -> caption stored, clips paced in real time "
            f"({rt['captions']} captions on {len(rt['videos'])} clips): p50 {rt['p50_s']:.2f} s, "
            f"p95 {rt['p95_s']:.2f} s, max {rt['max_s']:.2f} s"
        )
    long10 = result.get("long10")
    if long10:
        out.append(
            f"\n`evs run` on a {long10['duration_s']:.0f}-s clip: {long10['wall_s']:.0f} s wall "
            f"({long10['speed']:.2f}x real time), {long10['stored']} events, "
            f"{long10['captions']} captions"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="default")
    ap.add_argument("--policies", nargs="+", default=["event", "interval", "frame"])
    ap.add_argument("--interval", type=float, default=1.0, help="interval policy period (s)")
    ap.add_argument("--max-videos", type=int, help="only the first N benchmark videos")
    ap.add_argument("--frame-videos", type=int, default=3, help="frame policy on the first N only")
    ap.add_argument("--realtime", type=int, default=0, metavar="N", help="latency on N cuts clips")
    ap.add_argument("--long10", action="store_true", help="time `evs run` on a 10-minute clip")
    ap.add_argument("--no-policies", action="store_true", help="skip the policy comparison")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    settings = load_settings(args.config)
    embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
    decoder = load_decoder(settings)
    if decoder is None:
        sys.exit("language.backend is none: nothing to benchmark")
    result: dict[str, Any] = run_record() | {"decoder": decoder.info.__dict__}
    if not args.no_policies:
        result["policies"] = bench_policies(args, settings, decoder, embedder)
    if args.realtime:
        result["realtime"] = bench_realtime(args, settings, decoder, embedder)
    if args.long10:
        result["long10"] = bench_long10(args)
    finish(result, args.json)
    print(markdown(result))


if __name__ == "__main__":
    main()
