"""`evs run` with captions from the packaged decoder, its timeline report, and `evs query`, as a
user runs them: real subprocesses, a real memory directory."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest
from cli_runner import evs

# One torch thread for the decoder: on a busy 2-core runner two spinning intra-op threads make
# generation several times slower. A short answer budget keeps `evs query` quick.
FAST = {"EVS_LANGUAGE__THREADS": "1", "EVS_LANGUAGE__ANSWER_MAX_TOKENS": "32"}


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ran(synthetic_clips, tmp_path_factory) -> dict[str, Any]:
    path, truth = synthetic_clips["cuts"]
    data = tmp_path_factory.mktemp("run")
    result = evs("run", str(path), "--data-dir", str(data), "--json", env=FAST)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    return {
        "data": data,
        "path": path,
        "truth": truth,
        "lines": lines,
        "stderr": result.stderr,
        "stored": [line for line in lines if line["type"] == "stored"],
        "captions": [line for line in lines if line["type"] == "caption"],
    }


def stored_ids(ran: dict[str, Any]) -> list[int]:
    return sorted({line["id"] for line in ran["stored"]})


def test_run_prints_stored_and_caption_lines(ran) -> None:
    assert {line["type"] for line in ran["lines"]} == {"stored", "caption"}
    stored, captions = ran["stored"], ran["captions"]
    assert len(stored) >= 2
    assert sorted(c["id"] for c in captions) == stored_ids(ran)  # one caption per stored id
    position = {(line["type"], line["id"]): i for i, line in enumerate(ran["lines"])}
    for c in captions:
        assert position[("caption", c["id"])] > position[("stored", c["id"])]
        assert c["caption"].strip() and "\n" not in c["caption"]
        assert c["latency_s"] >= c["decode_s"] >= 0
        assert isinstance(c["fallback"], bool)
    for s in stored:
        assert s["end"] > s["start"] >= 0 and s["text"]
    assert f"{len(captions)} captions" in ran["stderr"]
    assert "Traceback" not in ran["stderr"]


def test_run_writes_a_timeline_report(ran) -> None:
    report = Path(ran["data"]) / "reports" / Path(ran["path"]).stem
    for name in ("timeline.json", "timeline.md", "timeline.html"):
        assert (report / name).is_file(), name
    assert str(report / "timeline.html") in ran["stderr"]
    doc = json.loads((report / "timeline.json").read_text())
    entries = doc["entries"]
    assert [e["id"] for e in entries] == stored_ids(ran)
    captions = {c["id"]: c["caption"] for c in ran["captions"]}
    assert {e["id"]: e["caption"] for e in entries} == captions
    assert all(e["keyframes"] and e["keyframes"][0]["thumbnail"] for e in entries)
    for e in entries:
        for keyframe in e["keyframes"]:
            assert (report / keyframe["thumbnail"]).is_file()
    extra = doc["meta"]["extra"]
    assert extra["trigger"] == "event" and extra["decoder"] == "transformers"
    assert extra["decoder_calls"] == len(captions) and extra["captions_failed"] == 0
    page = (report / "timeline.html").read_text()
    markdown = (report / "timeline.md").read_text()
    for caption in captions.values():
        assert html.escape(caption) in page
        assert html.escape(caption, quote=False).replace("|", "\\|") in markdown


def test_captions_are_in_memory(ran) -> None:
    result = evs("memory", "export", "--data-dir", str(ran["data"]))
    rows = {row["id"]: row for row in json_lines(result.stdout)}
    assert sorted(rows) == stored_ids(ran)
    for c in ran["captions"]:
        assert rows[c["id"]]["caption"] == c["caption"]
        assert rows[c["id"]]["text"].startswith(c["caption"])
    stats = json.loads(evs("memory", "stats", "--data-dir", str(ran["data"]), "--json").stdout)
    assert stats["captioned"] == len(ran["captions"])
    assert stats["indexes"]["text"]["vectors"] == len(rows)


def test_query_now_cites_stored_events(ran) -> None:
    result = evs(
        "query", "what is happening now", "--data-dir", str(ran["data"]), "--json", env=FAST
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["intent"] == "now" and answer["grounded"] is True and answer["text"]
    ids = [c["id"] for c in answer["citations"]]
    assert ids and set(ids) <= set(stored_ids(ran))
    latest = max(ran["stored"], key=lambda s: s["end"])["id"]
    assert latest in ids
    spans = {s["id"]: (s["start"], s["end"]) for s in ran["stored"] if not s["merged"]}
    for c in answer["citations"]:
        assert c["start"] == spans[c["id"]][0]


def test_query_with_nothing_relevant_is_not_grounded(ran) -> None:
    result = evs(
        "query", "was there an elephant", "--data-dir", str(ran["data"]), "--json", env=FAST
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["grounded"] is False and answer["citations"] == []
    assert answer["intent"] == "presence" and answer["text"].startswith("No")


def test_query_streams_text_and_lists_events(ran) -> None:
    result = evs("query", "what is happening now", "--data-dir", str(ran["data"]), env=FAST)
    assert result.returncode == 0, result.stderr
    text, _, listing = result.stdout.partition("\nevents:\n")
    assert text.strip() and listing, result.stdout
    cited = [line.strip() for line in listing.splitlines() if line.strip()]
    assert cited and all(line.startswith("[#") for line in cited)
    ids = {int(line[2:].split("]", 1)[0]) for line in cited}
    assert ids <= set(stored_ids(ran))


def test_interval_trigger_stores_more_units(ran, tmp_path) -> None:
    data = tmp_path / "interval"
    result = evs(
        "run",
        str(ran["path"]),
        "--data-dir",
        str(data),
        "--json",
        "--trigger",
        "interval",
        "--interval",
        "1",
        "--no-captions",
    )
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert {line["type"] for line in lines} == {"stored"}  # no captions
    assert len(lines) > len(ran["stored"])
    assert len(lines) == pytest.approx(ran["truth"]["duration"], abs=1)  # one per second
    report = json.loads((data / "reports" / Path(ran["path"]).stem / "timeline.json").read_text())
    assert report["meta"]["extra"]["trigger"] == "interval"
    assert report["meta"]["extra"]["decoder"] == "none"


def test_bad_decoder_config_is_a_clear_error(ran, tmp_path) -> None:
    env = {"EVS_LANGUAGE__MODEL": "/nonexistent/evs-model"}
    result = evs("run", str(ran["path"]), "--data-dir", str(tmp_path / "bad"), env=env)
    assert result.returncode == 1
    assert "/nonexistent/evs-model" in result.stderr and "Traceback" not in result.stderr
    query = evs("query", "what is happening now", "--data-dir", str(ran["data"]), env=env)
    assert query.returncode == 1 and "/nonexistent/evs-model" in query.stderr
