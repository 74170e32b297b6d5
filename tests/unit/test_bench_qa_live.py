"""bench_qa_live's report: per-family accuracy per split, the time check, latency, phrasing; and
the caption check over streamed caption messages (scripts/bench_qa_live.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_qa_live  # noqa: E402
from qa_streams import Segment, StreamSpec  # noqa: E402


def row(split: str, family: str, ok: bool, latency: float, **extra: object) -> dict:
    base = {"split": split, "family": family, "ok": ok, "latency_s": latency, "known": True,
            "error": None, "invented_time": False, "phrased": False}  # fmt: skip
    return {**base, **extra}


def test_table_counts_per_family_and_split() -> None:
    rows = [
        row("dev", "last", True, 0.1),
        row("dev", "last", False, 0.3, invented_time=True, phrased=True),
        row("dev", "first", False, 9.0, known=False),
        row("held-out", "summary", True, 0.2),
        row("held-out", "now", False, float("nan"), error="timeout"),
    ]
    text = "\n".join(bench_qa_live.table(rows))
    assert "| last | 0.50 (2) | - |" in text
    assert "| last/first outside ImageNet | 0.00 (1) | - |" in text
    assert "| overall | 0.33 (3) | 0.50 (2) |" in text
    assert (
        "dev: answers stating a time not in their evidence 1 of 3; phrased by the decoder 1" in text
    )
    assert "p95 9.00 s" in text and "errors 1" in text  # the timed-out answer is not a latency


def test_naming_reads_streamed_captions_against_the_splice() -> None:
    spec = StreamSpec("s", "dev", [])
    spec.segments = [Segment("bikes", 0.0, 8.0), Segment("tree", 8.0, 16.0)]
    events = {
        1: {"start": 0.0, "end": 4.0, "caption": "Two cyclists ride past."},
        2: {"start": 8.5, "end": 15.0, "caption": "A dark street."},
        3: {"start": 4.0, "end": 8.0, "caption": None},  # no caption: not counted
    }
    assert bench_qa_live.naming(spec, events) == (1, 2)
