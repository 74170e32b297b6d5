"""`evs query` as a user reads it: the answer once, then the events it cites with their times.

A real `evs run` with captions (the packaged decoder), so the summary's timeline quotes captions
that a careless event listing would print a second time (it did: "evs query prints summary
twice").
"""

from __future__ import annotations

import json

import pytest
from cli_runner import evs


@pytest.fixture(scope="module")
def captioned(synthetic_clips, tmp_path_factory):
    path, _ = synthetic_clips["cuts"]
    data = tmp_path_factory.mktemp("query-memory")
    result = evs("run", str(path), "--data-dir", str(data), "--stream", "cam1", "--progress", "off")
    assert result.returncode == 0, result.stderr
    export = evs("memory", "export", "--data-dir", str(data))
    rows = [json.loads(line) for line in export.stdout.splitlines()]
    assert rows and all(row["caption"] for row in rows)  # what the once-only check needs
    return data, rows


def test_summary_is_printed_once_and_cited_events_with_their_times(captioned):
    data, rows = captioned
    as_json = evs("query", "what happened?", "--data-dir", str(data), "--json")
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["intent"] == "summary" and len(answer["citations"]) == len(rows)

    result = evs("query", "what happened?", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert out.startswith(answer["text"] + "\n")
    assert out.count(answer["text"]) == 1
    _, _, listed = out.partition("\nevents:\n")
    lines = listed.splitlines()
    assert len(lines) == len(rows)
    for line, row in zip(lines, sorted(rows, key=lambda r: r["start"]), strict=True):
        assert line.strip() == f"[#{row['id']}] cam1, {row['start']:.1f} s to {row['end']:.1f} s"
    for row in rows:  # every caption in the summary, none of them again below it
        assert row["caption"] in answer["text"] and row["caption"] not in listed


def test_similar_to_an_unknown_event_is_a_clear_error(captioned):
    data, rows = captioned
    missing = max(row["id"] for row in rows) + 100
    result = evs("memory", "search", "--like", str(missing), "--data-dir", str(data))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == f"evs: error [not_found]: no event #{missing} in memory"
