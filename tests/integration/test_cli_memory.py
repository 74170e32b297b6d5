"""`evs run` and `evs memory` as a user runs them: real subprocesses, a real database file."""

from __future__ import annotations

import json

import pytest
from cli_runner import evs


@pytest.fixture(scope="module")
def memory_dir(synthetic_clips, tmp_path_factory):
    path, _ = synthetic_clips["cuts"]
    data = tmp_path_factory.mktemp("memory")
    # Captions are not what these tests check: --no-captions keeps them fast and the text of
    # each event its label description.
    result = evs(
        "run", str(path), "--data-dir", str(data), "--stream", "cam1", "--json", "--no-captions"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["type"] for line in lines} == {"stored"}
    return data, path, lines


def test_run_stores_every_event_durably(memory_dir, synthetic_clips):
    data, _, stored = memory_dir
    _, truth = synthetic_clips["cuts"]
    assert len(stored) == len(truth["boundaries"]) + 1
    assert [s["id"] for s in stored] == sorted({s["id"] for s in stored})
    stats = json.loads(evs("memory", "stats", "--data-dir", str(data), "--json").stdout)
    assert stats["events"] == len(stored) and stats["sources"] == 1
    assert stats["indexes"]["visual"]["vectors"] == len(stored)
    assert stats["indexes"]["text"]["dim"] == 384


def test_rerun_is_idempotent_and_force_replaces(memory_dir):
    data, path, stored = memory_dir
    again = evs("run", str(path), "--data-dir", str(data), "--stream", "cam1", "--no-captions")
    assert again.returncode == 0 and "already in memory" in again.stderr
    forced = evs(
        "run", str(path), "--data-dir", str(data), "--stream", "cam1", "--force", "--no-captions"
    )
    assert forced.returncode == 0
    stats = json.loads(evs("memory", "stats", "--data-dir", str(data), "--json").stdout)
    assert stats["events"] == len(stored)


def test_search_by_text_time_and_similarity(memory_dir):
    data, _, _ = memory_dir
    by_text = evs("memory", "search", "a photograph", "--data-dir", str(data), "--json", "-k", "3")
    hits = [json.loads(line) for line in by_text.stdout.splitlines()]
    assert len(hits) == 3 and all(h["matched"] == "text" for h in hits)
    assert hits[0]["score"] >= hits[-1]["score"]
    window = evs("memory", "search", "--from", "0", "--to", "1", "--data-dir", str(data), "--json")
    rows = [json.loads(line) for line in window.stdout.splitlines()]
    assert rows and all(r["start"] <= 1 for r in rows)
    first_id = rows[0]["id"]
    like = evs("memory", "search", "--like", str(first_id), "--data-dir", str(data), "--json")
    assert all(json.loads(line)["id"] != first_id for line in like.stdout.splitlines())
    none = evs("memory", "search", "x", "--stream", "nobody", "--data-dir", str(data))
    assert none.returncode == 0 and "no matching events" in none.stderr


def test_export_is_json_lines(memory_dir):
    data, _, stored = memory_dir
    result = evs("memory", "export", "--data-dir", str(data), "--embeddings")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(stored) and len(rows[0]["embedding"]) == 1280
    assert rows[0]["stream"] == "cam1" and rows[0]["text"].startswith("a video event showing")


def test_corrupt_database_is_a_clear_error(tmp_path):
    (tmp_path / "evs.sqlite3").write_bytes(b"not a database" * 100)
    result = evs("memory", "stats", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "memory_corrupt" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "evs.sqlite3").read_bytes() == b"not a database" * 100
