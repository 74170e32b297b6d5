"""End-to-end segmentation of real files with real and tiny models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from eventvstream.config import load_settings
from eventvstream.events.metrics import score_boundaries
from eventvstream.events.types import KEYFRAME_LABELS
from eventvstream.pipeline import Segmenter

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tiny_events.json"


@pytest.fixture(scope="module")
def default_segmenter() -> Segmenter:
    return Segmenter(load_settings("default"))


def boundaries(events) -> list[float]:
    return [e.start for e in events[1:]]


@pytest.mark.parametrize("category", ["cuts", "fades"])
def test_default_profile_finds_every_transition(default_segmenter, synthetic_clips, category):
    path, truth = synthetic_clips[category]
    events = list(default_segmenter.segment(path))
    score = score_boundaries(boundaries(events), truth["boundaries"], 0.5)
    assert (score.tp, score.fp, score.fn) == (len(truth["boundaries"]), 0, 0), boundaries(events)
    assert events[-1].end == pytest.approx(truth["duration"], abs=0.15)


def test_flicker_is_not_an_event(default_segmenter, synthetic_clips):
    path, _ = synthetic_clips["flicker"]
    events = list(default_segmenter.segment(path))
    assert len(events) == 1, [e.opened_by.to_dict() for e in events]


def test_events_carry_labels_keyframes_and_explanations(default_segmenter, synthetic_clips):
    path, _ = synthetic_clips["cuts"]
    events = list(default_segmenter.segment(path))
    for event in events:
        assert np.linalg.norm(event.embedding) == pytest.approx(1.0, abs=1e-4)
        assert event.keyframes and all(k.image is None for k in event.keyframes)  # pixels dropped
        want = min(KEYFRAME_LABELS, default_segmenter.settings.encoder.top_k_labels)
        assert want > 0 and all(len(k.labels) == want for k in event.keyframes)
        assert all(len({name for name, _ in k.labels}) == want for k in event.keyframes)
        assert event.labels[0][1] > 0
    for event in events[1:]:
        opened = event.opened_by
        assert opened.reason == "cue" and opened.scores.fused > opened.threshold
    json.dumps([e.to_dict() for e in events])  # serialisable as is


def test_real_clip_with_cuts(default_segmenter, bikes_video):
    """bikes.mp4: five hard cuts in 10 s of fast cycling footage; the last is 0.3 s before the
    end. At the default 2 fps we must find most cuts without inventing any."""
    path, truth = bikes_video
    events = list(default_segmenter.segment(path))
    score = score_boundaries(boundaries(events), truth["boundaries"], 1.0)
    assert score.fp <= 1
    assert score.tp >= 3, boundaries(events)


def test_tiny_profile_golden_events(synthetic_clips):
    """The tiny random open_clip profile runs the whole open_clip path; its events on a fixed
    clip are pinned so that any change in decoding, preprocessing or detection shows up."""
    path, _ = synthetic_clips["cuts"]
    events = list(Segmenter(load_settings("tiny")).segment(path))
    record = [
        {"start": round(e.start, 2), "end": round(e.end, 2), "frames": e.frame_count}
        for e in events
    ]
    if os.environ.get("EVS_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps({"tiny_profile_cuts_clip": record}, indent=1) + "\n")
    expected = json.loads(GOLDEN.read_text())["tiny_profile_cuts_clip"]
    assert record == expected
