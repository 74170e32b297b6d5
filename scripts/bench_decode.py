#!/usr/bin/env python
"""Video readers side by side: PyAV (FFmpeg 8 in its wheel) against decord (FFmpeg 4, 2021).

Two questions, one run:

1. **Speed** on the 720p H.264 throughput clip (``cuts_720p_01.mp4`` from
   ``scripts/make_bench_videos.py``; made here if missing) and on the benchmark set if present:
   ``open_video`` end to end (child process, sampling at 2 fps, frames scaled to short side 224,
   the pipeline's decoder threads), the two readers alternating so drift hits both alike.
2. **Robustness** on the format corpus (``eventvstream.testdata.corpus``) and the real
   packaged clips: which files each reader reads, and does the result agree (sampled frame
   times, pixels).

Usage::

    python scripts/bench_decode.py                      # ~1-2 min on 2 cores
    python scripts/bench_decode.py --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.errors import MediaError
from eventvstream.media import open_video
from eventvstream.testdata import corpus as video_corpus

READERS = ("decord", "pyav")


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the decode workers): on a shared machine, far
    steadier than wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_all(path: Path, reader: str, threads: int, short_side: int) -> dict[str, Any]:
    """Decode ``path`` fully; wall time, sampled times and frames (or the error)."""
    t0 = time.perf_counter()
    cpu0 = _children_cpu()
    try:
        with open_video(path, fps=2.0, short_side=short_side, threads=threads, reader=reader) as v:
            chunks = list(v)
            info = v.info
    except MediaError as exc:
        return {"ok": False, "error": f"{exc.code}: {exc.message}"[:160]}
    wall = time.perf_counter() - t0
    return {
        "ok": True,
        "wall": wall,
        "cpu": _children_cpu() - cpu0,
        "frames": info.frames,
        "duration": info.duration,
        "size": (info.width, info.height),
        "times": np.concatenate([c.times for c in chunks]) if chunks else np.zeros(0),
        "images": np.concatenate([c.images for c in chunks]) if chunks else None,
    }


def speed(path: Path, repeats: int, threads: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {r: [] for r in READERS}
    cpus: dict[str, list[float]] = {r: [] for r in READERS}
    last: dict[str, dict[str, Any]] = {}
    for i in range(repeats):
        order = READERS if i % 2 == 0 else READERS[::-1]
        for reader in order:
            result = read_all(path, reader, threads, 224)
            if not result["ok"]:
                raise SystemExit(f"{reader} cannot read {path}: {result['error']}")
            walls[reader].append(result["wall"])
            cpus[reader].append(result["cpu"])
            last[reader] = result
    med = {r: statistics.median(w) for r, w in walls.items()}
    cpu = {r: statistics.median(c) for r, c in cpus.items()}
    a, b = last["decord"], last["pyav"]
    same_times = a["times"].shape == b["times"].shape and np.allclose(
        a["times"], b["times"], atol=1e-3
    )
    pixel_diff = (
        float(np.abs(a["images"].astype(int) - b["images"].astype(int)).mean())
        if a["images"].shape == b["images"].shape
        else None
    )
    return {
        "video": path.name,
        "frames": b["frames"],
        "duration": round(b["duration"], 3),
        "walls": {r: [round(w, 3) for w in ws] for r, ws in walls.items()},
        "median_s": {r: round(m, 3) for r, m in med.items()},
        "frames_per_s": {r: round(b["frames"] / m, 1) for r, m in med.items()},
        "pyav_over_decord_time": round(med["pyav"] / med["decord"], 3),
        "cpu_s": {r: [round(c, 3) for c in cs] for r, cs in cpus.items()},
        "median_cpu_s": {r: round(c, 3) for r, c in cpu.items()},
        "pyav_over_decord_cpu": round(cpu["pyav"] / cpu["decord"], 3),
        "same_sampled_times": bool(same_times),
        "mean_abs_pixel_diff": None if pixel_diff is None else round(pixel_diff, 2),
    }


def robustness(files: dict[str, Path], threads: int) -> list[dict[str, Any]]:
    rows = []
    for name, path in files.items():
        row: dict[str, Any] = {"file": name}
        for reader in READERS:
            result = read_all(path, reader, threads, 120)
            row[reader] = (
                f"ok {result['size'][0]}x{result['size'][1]} {result['duration']:.2f}s "
                f"{len(result['times'])} sampled"
                if result["ok"]
                else result["error"]
            )
        rows.append(row)
        print(f"  {name}: decord={row['decord'][:70]} | pyav={row['pyav'][:70]}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, default=Path(".bench/videos"))
    ap.add_argument("--corpus", type=Path, default=Path(".bench/corpus"))
    ap.add_argument("--real-dir", type=Path, action="append", default=[Path(".bench/real")])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=1, help="FFmpeg threads (pipeline: 1 on 2 cores)"
    )
    ap.add_argument("--set", action="store_true", help="also time every video of the bench set")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    clip = args.videos / "cuts_720p_01.mp4"
    if not clip.is_file():
        from eventvstream import testdata

        print(f"writing {clip} ...", file=sys.stderr)
        args.videos.mkdir(parents=True, exist_ok=True)
        testdata.make_throughput_clip(clip, seed=0)
    results: dict[str, Any] = {"threads": args.threads, "repeats": args.repeats}
    print("speed on the 720p clip ...", file=sys.stderr)
    results["speed_720p"] = speed(clip, args.repeats, args.threads)
    print(json.dumps(results["speed_720p"]), file=sys.stderr)
    if args.set and (args.videos / "manifest.json").is_file():
        manifest = json.loads((args.videos / "manifest.json").read_text(encoding="utf-8"))
        totals = {r: 0.0 for r in READERS}
        for entry in manifest["videos"]:
            if entry["category"] == "cuts_720p":
                continue
            row = speed(args.videos / entry["video"], 1, args.threads)
            for r in READERS:
                totals[r] += row["median_s"][r]
        results["speed_set"] = {
            "videos": len(manifest["videos"]) - 1,
            "total_s": {r: round(t, 2) for r, t in totals.items()},
            "pyav_over_decord_time": round(totals["pyav"] / totals["decord"], 3),
        }
        print(json.dumps(results["speed_set"]), file=sys.stderr)
    print("robustness on the corpus and the real clips ...", file=sys.stderr)
    files = {p.name: p for p in video_corpus.make_all(args.corpus).values()}
    files.update(video_corpus.find_real_clips(tuple(args.real_dir)))
    rows = robustness(files, args.threads)
    results["corpus"] = rows
    results["reads"] = {r: sum(row[r].startswith("ok") for row in rows) for r in READERS}
    results["files"] = len(rows)
    print(json.dumps({k: results[k] for k in ("reads", "files")}), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
