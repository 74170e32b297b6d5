"""The OVO-Bench / StreamingBench readers and the multiple-choice scoring (scripts/mc_readers.py),
on small fixtures in the benchmarks' own formats (tests/fixtures/benchmarks)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "benchmarks"
sys.path.insert(0, str(ROOT / "scripts"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


mc = _load("mc_readers")


def test_ovo_reads_backward_and_realtime_and_skips_forward(tmp_path: Path) -> None:
    items, skipped = mc.read_ovo(FIXTURES / "ovo_bench_sample.json", tmp_path)
    assert [(i.task, i.mode) for i in items] == [("EPM", "backward"), ("OJR", "realtime")]
    first = items[0]
    assert first.video == tmp_path / "clips" / "bikes.mp4"
    assert first.options == ("horses", "bicycles", "boats", "skateboards")
    assert (first.answer, first.at, first.source, first.id) == (1, 6.0, "ovo", "0")
    assert len(skipped) == 1 and "REC" in skipped[0] and "forward" in skipped[0]
    only, _ = mc.read_ovo(FIXTURES / "ovo_bench_sample.json", tmp_path, modes=("realtime",))
    assert [i.task for i in only] == ["OJR"]


def test_ovo_accepts_the_split_dict_and_a_flattened_video_folder(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "ovo_bench_sample.json").read_text())
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"backward": data[:1], "realtime": data[1:2], "forward": []}))
    (tmp_path / "bikes.mp4").write_bytes(b"")  # unpacked without the clips/ folder
    items, _ = mc.read_ovo(path, tmp_path)
    assert len(items) == 2 and items[0].video == tmp_path / "bikes.mp4"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gt": 4}, "'gt' must index"),
        ({"task": "XYZ"}, "unknown OVO-Bench task"),
        ({"options": "a bicycle"}, "'options' must be a list"),
        ({"realtime": -1}, "'realtime' must be seconds"),
    ],
)
def test_ovo_bad_items_are_named(tmp_path: Path, change: dict, message: str) -> None:
    data = json.loads((FIXTURES / "ovo_bench_sample.json").read_text())
    data[0].update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(mc.FormatError, match=re.escape(message)) as err:
        mc.read_ovo(path)
    assert "bad.json[0]" in str(err.value)


def test_streamingbench_reads_lettered_options_and_skips_open_questions(tmp_path: Path) -> None:
    items, skipped = mc.read_streamingbench(FIXTURES / "streamingbench_sample.json", tmp_path)
    assert len(items) == 1 and len(skipped) == 1 and "open-ended" in skipped[0]
    item = items[0]
    assert item.options == ("A car.", "A bicycle.", "A boat.", "A train.")
    assert (item.answer, item.at, item.task) == (1, 5.0, "Object Recognition")
    assert item.video == tmp_path / "videos" / "bikes.mp4"  # "./videos/..." under the folder


def test_streamingbench_answer_must_be_an_option_letter(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "streamingbench_sample.json").read_text())
    data[0]["questions"][0]["answer"] = "E"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(mc.FormatError, match="option letters"):
        mc.read_streamingbench(path)


def test_not_json_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(mc.FormatError, match="not JSON"):
        mc.read_streamingbench(path)
    path.write_text('{"a": 1}')
    with pytest.raises(mc.FormatError, match="JSON list"):
        mc.read_streamingbench(path)


@pytest.mark.parametrize(
    ("text", "seconds"), [("00:03:10", 190.0), ("3:10", 190.0), ("45", 45.0), (12, 12.0)]
)
def test_parse_timestamp(text: object, seconds: float) -> None:
    assert mc.parse_timestamp(text) == seconds


@pytest.mark.parametrize("text", ["1:2:3:4", "ab:cd", "-1"])
def test_parse_timestamp_refuses(text: str) -> None:
    with pytest.raises(mc.FormatError):
        mc.parse_timestamp(text)


OPTIONS = ("A car.", "A bicycle.", "A boat.", "A train.")


@pytest.mark.parametrize(
    ("text", "evidence", "picked"),
    [
        ("B. A bicycle.", "", 1),
        ("The answer is C.", "", 2),
        ("D", "", 3),
        ("A bicycle was last seen at 3.0 s [#4].", "", 1),
        ("The most recent matching event is at 2.0-4.0 s [#2].", "Bicycles ride past.", 1),
        ("I have nothing in memory about that.", "", None),
        ("A car or a boat.", "", None),  # a tie picks nothing
    ],
)
def test_choose(text: str, evidence: str, picked: int | None) -> None:
    assert mc.choose(text, OPTIONS, evidence) == picked


def test_choose_yes_no_and_a_letter_outside_the_options() -> None:
    assert mc.choose("Yes, at 2.0-4.0 s [#1].", ("yes", "no")) == 0
    assert mc.choose("No, I did not see that.", ("Yes", "No")) == 1
    assert mc.choose("Maybe.", ("yes", "no")) is None
    assert mc.choose("E. something", ("a cat", "a dog")) is None


def test_chance_and_question_text(tmp_path: Path) -> None:
    items, _ = mc.read_ovo(FIXTURES / "ovo_bench_sample.json", tmp_path)
    assert mc.chance(items) == pytest.approx(0.25)
    assert mc.question_text(items[1], False) == items[1].question
    sent = mc.question_text(items[1], True)
    assert "A. a bicycle" in sent and "D. an airplane" in sent


def test_stream_ids_are_valid_and_distinct() -> None:
    bench = _load("bench_mc")
    pattern = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
    a = bench.stream_id(Path("YouTube_Games/PLJ3VIGhVd3r8Int6IZT_v3S_BzG9RVfiG&index=1.mp4"))
    b = bench.stream_id(Path("YouTube_Games/PLJ3VIGhVd3r8Int6IZT_v3S_BzG9RVfiG&index=2.mp4"))
    assert pattern.match(a) and pattern.match(b) and a != b
