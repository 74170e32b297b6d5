"""The timeline report: files round-trip, thumbnails are small JPEGs, model text is escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eventvstream.pipeline.report import TimelineEntry, format_time, write_report

EVIL = "<script>alert(1)</script> & \"quoted\" 'single'"


def _entries() -> list[TimelineEntry]:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (100, 50, 3), dtype=np.uint8)
    scores = {
        "semantic": 0.41,
        "motion": 0.2,
        "predictive": 0.33,
        "semantic_norm": 4.1,
        "motion_norm": 1.2,
        "predictive_norm": 2.0,
        "fused": 7.2345,
    }
    return [
        TimelineEntry(
            id=0,
            start=0.0,
            end=4.5,
            caption=None,
            labels=[("dog", 0.8)],
            merged=False,
            boundary={"t": 4.5, "reason": "cue", "threshold": 5.0, "scores": scores},
            keyframes=[],
        ),
        TimelineEntry(
            id=1,
            start=4.5,
            end=65.24,
            caption=EVIL,
            labels=[("cat", 0.51234), ("sofa", 0.2)],
            merged=True,
            boundary={"t": 65.24, "reason": "max_length", "threshold": None, "scores": None},
            keyframes=[(10.0, None)],
            caption_latency_s=0.4321,
        ),
        TimelineEntry(
            id=12,
            start=65.24,
            end=90.0,
            caption="A person walks | past",
            labels=[],
            merged=False,
            boundary=None,
            keyframes=[(70.0, big), (80.0, small), (85.0, None)],
        ),
    ]


@pytest.fixture
def report(tmp_path: Path) -> dict[str, Path]:
    return write_report(
        tmp_path / "out",
        video="clips/demo <1>.mp4",
        stream="demo",
        profile="default",
        duration_s=90.0,
        elapsed_s=30.0,
        entries=_entries(),
        extra={"device": "cpu", "ratio": 1 / 3},
    )


def test_json_round_trips_with_existing_thumbnails(report: dict[str, Path]) -> None:
    out = report["json"].parent
    assert set(report) == {"json", "markdown", "html"}
    assert all(p.exists() for p in report.values())
    assert not list(out.rglob("*.tmp"))
    doc = json.loads(report["json"].read_text())
    assert doc["meta"]["events"] == 3
    assert doc["meta"]["speed"] == 3.0
    assert doc["meta"]["extra"]["ratio"] == 0.333
    entries = doc["entries"]
    assert [e["id"] for e in entries] == [0, 1, 12]
    assert [(e["start"], e["end"]) for e in entries] == [(0.0, 4.5), (4.5, 65.24), (65.24, 90.0)]
    assert entries[0]["caption"] is None
    assert entries[1]["caption"] == EVIL
    assert entries[1]["labels"] == [["cat", 0.512], ["sofa", 0.2]]
    assert entries[1]["caption_latency_s"] == 0.432
    assert entries[0]["boundary"]["scores"]["fused"] == 7.234
    assert entries[1]["keyframes"] == [{"t": 10.0, "thumbnail": None}]
    thumbs = [k["thumbnail"] for k in entries[2]["keyframes"]]
    assert thumbs == ["thumbs/ev12_0.jpg", "thumbs/ev12_1.jpg", None]
    assert all((out / t).is_file() for t in thumbs if t)


def test_thumbnails_are_small_jpegs(report: dict[str, Path]) -> None:
    files = sorted((report["json"].parent / "thumbs").iterdir())
    assert [f.name for f in files] == ["ev12_0.jpg", "ev12_1.jpg"]
    sizes = []
    for f in files:
        with Image.open(f) as image:
            assert image.format == "JPEG"
            assert max(image.size) <= 240
            sizes.append(image.size)
    assert sizes == [(240, 135), (50, 100)]  # aspect kept; small images are not upscaled


def test_html_escapes_model_text_and_has_one_card_and_segment_per_entry(
    report: dict[str, Path],
) -> None:
    page = report["html"].read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "demo &lt;1&gt;.mp4" in page
    assert len(re.findall(r'<div class="card"', page)) == 3
    assert len(re.findall(r'<rect class="seg"', page)) == 3
    assert "(no caption)" in page
    assert "boundary: cue, fused 7.23 ≥ threshold 5.0" in page
    assert "3.0× real time" in page
    assert 'src="thumbs/ev12_0.jpg"' in page and 'src="thumbs/ev12_1.jpg"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_markdown_table(report: dict[str, Path]) -> None:
    lines = report["markdown"].read_text().strip().splitlines()
    assert lines[0].startswith("| # |") and set(lines[1]) <= set("|-")
    rows = lines[2:]
    assert len(rows) == 3
    assert "0:04.5–1:05.2" in rows[1]
    assert "<script>" not in rows[1]
    assert "walks \\| past" in rows[2]
    assert "![](thumbs/ev12_0.jpg)" in rows[2] and "![](thumbs/ev12_1.jpg)" in rows[2]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00.0"), (65.24, "1:05.2"), (3723, "1:02:03.0"), (59.96, "1:00.0"), (-1, "0:00.0")],
)
def test_format_time(seconds: float, text: str) -> None:
    assert format_time(seconds) == text
