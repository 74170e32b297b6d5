"""The `evs` command line as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import evs


@pytest.fixture(scope="module")
def segmented(synthetic_clips, tmp_path_factory) -> tuple[Path, Path, dict]:
    path, truth = synthetic_clips["cuts"]
    out = tmp_path_factory.mktemp("cli")
    truth_file = out / "truth.json"
    truth_file.write_text(json.dumps(truth))
    result = evs("segment", str(path), "--json", "--trace", str(out / "trace.jsonl"))
    assert result.returncode == 0, result.stderr
    (out / "events.jsonl").write_text(result.stdout)
    return out / "events.jsonl", truth_file, truth


def test_segment_json_lines(segmented):
    events_file, _, truth = segmented
    records = [json.loads(line) for line in events_file.read_text().splitlines()]
    events = [r for r in records if r["type"] == "event"]
    summary = records[-1]
    assert summary["type"] == "summary" and summary["events"] == len(events)
    assert summary["profile"] == "default"
    assert len(events) == len(truth["boundaries"]) + 1
    assert [e["index"] for e in events] == list(range(len(events)))
    for event in events[1:]:
        assert event["opened_by"]["reason"] == "cue"
        assert event["opened_by"]["scores"]["fused"] > event["opened_by"]["threshold"]
        assert event["keyframes"] and event["labels"]


def test_trace_has_one_line_per_sampled_frame(segmented):
    events_file, _, _ = segmented
    summary = json.loads(events_file.read_text().splitlines()[-1])
    trace = (events_file.parent / "trace.jsonl").read_text().splitlines()
    assert len(trace) == summary["sampled_frames"]
    assert sum(json.loads(line)["fired"] for line in trace) == summary["events"] - 1


def test_eval_scores_segment_output(segmented):
    events_file, truth_file, truth = segmented
    result = evs("eval", str(events_file), str(truth_file), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["truth"] == len(truth["boundaries"])
    one_second = next(s for s in report["scores"] if s["tolerance"] == 1.0)
    assert one_second["f1"] == 1.0
    human = evs("eval", str(events_file), str(truth_file))
    assert "precision" in human.stdout and human.returncode == 0


def test_human_output_explains_boundaries(synthetic_clips):
    path, _ = synthetic_clips["fades"]
    result = evs("segment", str(path), "--progress", "off")
    assert result.returncode == 0, result.stderr
    assert "opened by cue: E=" in result.stdout and "> tau=" in result.stdout
    assert "events in" in result.stderr


def test_missing_video_is_a_clear_error(tmp_path):
    result = evs("segment", str(tmp_path / "nope.mp4"))
    assert result.returncode == 1
    assert "not_found" in result.stderr and "nope.mp4" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_corrupt_video_is_read_with_a_warning(corrupt_video):
    """Like the ffmpeg tool, the reader skips what the decoder rejects, and says so."""
    result = evs("segment", str(corrupt_video), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["damaged_packets"] > 0 and summary["duration_s"] == pytest.approx(10, abs=0.1)
    assert "damaged packet(s)" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_video_is_a_clear_error_with_decord(corrupt_video):
    pytest.importorskip("decord")
    result = evs("segment", str(corrupt_video), "--json", env={"EVS_SAMPLING__READER": "decord"})
    assert result.returncode == 1
    assert "corrupt_video" in result.stderr or "decoder_crashed" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_names_the_key(testsrc_video):
    result = evs("segment", str(testsrc_video), env={"EVS_EVENTS__TAU0": "-3"})
    assert result.returncode == 2
    assert "events.tau0" in result.stderr and "EVS_EVENTS__TAU0" in result.stderr


def test_eval_rejects_a_malformed_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"boundaries": ["soon"]}')
    result = evs("eval", str(bad), str(bad))
    assert result.returncode == 1 and "list of boundary times" in result.stderr


def test_piping_into_head_is_not_an_error(synthetic_clips):
    path, _ = synthetic_clips["cuts"]
    result = subprocess.run(
        f"{sys.executable} -m eventvstream.cli segment {path} --json | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(result.stdout)["type"] == "event"
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_embeddings_on_request(synthetic_clips):
    path, _ = synthetic_clips["fades"]
    result = evs("segment", str(path), "--json", "--embeddings")
    event = json.loads(result.stdout.splitlines()[0])
    assert len(event["embedding"]) == 1280
