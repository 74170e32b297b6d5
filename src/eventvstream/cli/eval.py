"""``evs eval PREDICTED TRUTH``: score predicted boundaries against ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eventvstream.cli.common import Subparsers
from eventvstream.errors import EvsError


def add_parser(sub: Subparsers) -> None:
    ev = sub.add_parser("eval", help="score predicted boundaries against ground truth")
    ev.add_argument("predicted", type=Path, help="`evs segment --json` output, or a boundary list")
    ev.add_argument("truth", type=Path, help='ground truth: {"boundaries": [...]} or a list')
    ev.add_argument(
        "--tolerance", type=float, nargs="+", default=[0.5, 1.0], help="seconds (default 0.5 1.0)"
    )
    ev.add_argument("--json", action="store_true", help="print the scores as one JSON object")


def _read_boundaries(path: Path) -> list[float]:
    """Boundaries from `evs segment --json` output (event starts after the first), a JSON list
    of times, or a JSON object with a "boundaries" list."""
    if not path.is_file():
        raise EvsError(f"file not found: {path}", code="not_found")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise EvsError(f"{path}: not a boundary file (not UTF-8 text)", code="bad_input") from None
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


def main(args: argparse.Namespace) -> int:
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
