"""The ``evs`` command line: ``evs segment`` and ``evs eval`` (more subcommands to come).

stdout carries results only (human lines, or JSON lines with ``--json``); progress bars, logs and
errors go to stderr, so ``evs segment clip.mp4 --json > events.jsonl`` is always clean.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventvstream import __version__, cli_memory, cli_run, cli_serve, cli_stream
from eventvstream.errors import EvsError

EXIT_ERROR = 1
EXIT_USAGE = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evs", description="Event-VStream: streaming video understanding in events."
    )
    parser.add_argument("--version", action="version", version=f"evs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    seg = sub.add_parser("segment", help="cut a video into events and print them")
    seg.add_argument("video", type=Path, help="video file (any format FFmpeg/decord reads)")
    seg.add_argument(
        "--config", "-c", default=None, help="profile name (default, tiny, gpu) or YAML path"
    )
    seg.add_argument("--json", action="store_true", help="print JSON lines, one per event")
    seg.add_argument(
        "--embeddings", action="store_true", help="with --json: include each event's embedding"
    )
    seg.add_argument("--trace", type=Path, help="write per-frame cue scores as JSON lines here")
    seg.add_argument(
        "--progress",
        choices=["auto", "on", "off"],
        default="auto",
        help="progress bar on stderr (auto: only on a terminal)",
    )

    cli_run.add_parsers(sub)
    cli_memory.add_parsers(sub)
    cli_serve.add_parser(sub)
    cli_stream.add_parser(sub)

    ev = sub.add_parser("eval", help="score predicted boundaries against ground truth")
    ev.add_argument("predicted", type=Path, help="`evs segment --json` output, or a boundary list")
    ev.add_argument("truth", type=Path, help='ground truth: {"boundaries": [...]} or a list')
    ev.add_argument(
        "--tolerance", type=float, nargs="+", default=[0.5, 1.0], help="seconds (default 0.5 1.0)"
    )
    ev.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "segment":
            return _segment(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "run":
            return cli_run.run(args)
        if args.command == "query":
            return cli_run.query(args)
        if args.command == "memory":
            return cli_memory.memory(args)
        if args.command == "serve":
            return cli_serve.serve(args)
        if args.command == "stream":
            return cli_stream.stream(args)
    except EvsError as exc:
        print(f"evs: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.code == "invalid_config" else EXIT_ERROR
    except KeyboardInterrupt:
        print("evs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`evs segment ... | head`): that is not an error. Point stdout at
        # devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return EXIT_USAGE  # pragma: no cover - argparse enforces a command


# -- segment ------------------------------------------------------------------------------------
def _segment(args: argparse.Namespace) -> int:
    from eventvstream.config import load_settings
    from eventvstream.pipeline import Segmenter

    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level)
    progress = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    started = time.perf_counter()
    segmenter = Segmenter(settings)
    count = 0
    for event in segmenter.segment(args.video, progress=progress, trace=args.trace is not None):
        count += 1
        if args.json:
            record = event.to_dict(with_embedding=args.embeddings)
            print(json.dumps({"type": "event", **record}), flush=True)
        else:
            print(_describe_event(event), flush=True)
    elapsed = time.perf_counter() - started
    info = segmenter.last_info
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
    if args.trace is not None and segmenter.last_detector is not None:
        _write_trace(args.trace, segmenter.last_detector.traces or [])
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


# -- eval ---------------------------------------------------------------------------------------
def _read_boundaries(path: Path) -> list[float]:
    """Boundaries from `evs segment --json` output (event starts after the first), a JSON list
    of times, or a JSON object with a "boundaries" list."""
    if not path.is_file():
        raise EvsError(f"file not found: {path}", code="not_found")
    text = path.read_text(encoding="utf-8").strip()
    try:
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError:
            data = None  # several lines: JSON lines from `evs segment --json`
        if data is None or (isinstance(data, dict) and "type" in data):
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            starts = sorted(r["start"] for r in records if r.get("type", "event") == "event")
            return [float(t) for t in starts[1:]]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise EvsError(f"{path}: not a boundary file: {exc}", code="bad_input") from None
    if isinstance(data, dict):
        data = data.get("boundaries")
    if not isinstance(data, list) or not all(isinstance(t, (int, float)) for t in data):
        raise EvsError(f"{path}: expected a list of boundary times in seconds", code="bad_input")
    return sorted(float(t) for t in data)


def _eval(args: argparse.Namespace) -> int:
    from eventvstream.events.metrics import score_boundaries

    predicted = _read_boundaries(args.predicted)
    truth = _read_boundaries(args.truth)
    scores = [score_boundaries(predicted, truth, tol) for tol in args.tolerance]
    if args.json:
        print(
            json.dumps(
                {
                    "predicted": len(predicted),
                    "truth": len(truth),
                    "scores": [s.to_dict() for s in scores],
                }
            )
        )
        return 0
    print(f"predicted {len(predicted)} boundaries, truth {len(truth)}")
    print(f"{'tolerance':>9}  {'precision':>9}  {'recall':>6}  {'F1':>6}  tp  fp  fn")
    for s in scores:
        print(
            f"{s.tolerance:>8.2f}s  {s.precision:>9.3f}  {s.recall:>6.3f}  {s.f1:>6.3f}  "
            f"{s.tp:>2d}  {s.fp:>2d}  {s.fn:>2d}"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
