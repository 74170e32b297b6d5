"""``evs segment VIDEO``: cut a video into events and print them (no memory, no decoder)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from eventvstream.cli.common import (
    CONFIG_HELP,
    Subparsers,
    progress_arg,
    video_source,
    want_progress,
)


def add_parser(sub: Subparsers) -> None:
    seg = sub.add_parser("segment", help="cut a video into events and print them")
    seg.add_argument("video", help="video file (any format FFmpeg/decord reads)")
    seg.add_argument("--config", "-c", default=None, help=CONFIG_HELP)
    seg.add_argument("--json", action="store_true", help="print JSON lines, one per event")
    seg.add_argument(
        "--embeddings", action="store_true", help="with --json: include each event's embedding"
    )
    seg.add_argument("--trace", type=Path, help="write per-frame cue scores as JSON lines here")
    progress_arg(seg, "progress bar on stderr (auto: only on a terminal)")


def main(args: argparse.Namespace) -> int:
    from eventvstream.config import load_settings
    from eventvstream.pipeline import Segmenter

    args.video = video_source(args.video, live=False)
    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level)
    if args.trace is not None:
        args.trace.open("w").close()  # an unwritable path fails now, not after the work
    progress = want_progress(args.progress)
    started = time.perf_counter()
    segmenter = Segmenter(settings)
    count = 0
    result = segmenter.segment(args.video, progress=progress, trace=args.trace is not None)
    for event in result:
        count += 1
        if args.json:
            record = event.to_dict(with_embedding=args.embeddings)
            print(json.dumps({"type": "event", **record}), flush=True)
        else:
            print(_describe_event(event), flush=True)
    elapsed = time.perf_counter() - started
    info = result.info
    assert info is not None
    summary = {
        "type": "summary",
        "video": str(args.video),
        "events": count,
        "duration_s": round(info.duration, 3),
        "sampled_frames": info.sampled_frames,
        "elapsed_s": round(elapsed, 3),
        "x_realtime": round(info.duration / elapsed, 2) if elapsed > 0 else None,
        "profile": settings.profile,
        "encoder": f"{settings.encoder.backend}:{settings.encoder.model}",
        "damaged_packets": info.damaged_packets,
    }
    if info.damaged_packets:
        print(
            f"evs: warning: {info.damaged_packets} damaged packet(s) in {args.video} were "
            "skipped (the pictures around them may be smeared)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(
            f"{count} event{'s' if count != 1 else ''} in {info.duration:.1f}s of video; "
            f"segmented in {elapsed:.1f}s "
            f"({summary['x_realtime']}x real time) with {summary['encoder']}",
            file=sys.stderr,
        )
    if args.trace is not None and result.detector is not None:
        _write_trace(args.trace, result.detector.traces or [])
    return 0


def _describe_event(event: Any) -> str:
    labels = ", ".join(name for name, _ in event.labels[:3]) or "-"
    keyframes = ",".join(f"{k.t:.1f}" for k in event.keyframes)
    line = (
        f"#{event.index:<3d} {event.start:8.2f}s - {event.end:8.2f}s  ({event.duration:5.1f}s)  "
        f"keyframes [{keyframes}]  {labels}"
    )
    opened = event.opened_by
    if opened.scores is not None and opened.threshold is not None:
        s = opened.scores
        line += (
            f"\n     opened by {opened.reason}: E={s.fused:.2f} > tau={opened.threshold:.2f} "
            f"(semantic {s.semantic_norm:.2f}, motion {s.motion_norm:.2f}, "
            f"predictive {s.predictive_norm:.2f})"
        )
    return line


def _write_trace(path: Path, traces: list[Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for trace in traces:
            record = {
                "t": round(trace.t, 3),
                "blank": trace.blank,
                "fired": trace.fired,
                "threshold": None if trace.threshold is None else round(trace.threshold, 4),
                "scores": None if trace.scores is None else trace.scores.to_dict(),
            }
            handle.write(json.dumps(record) + "\n")
