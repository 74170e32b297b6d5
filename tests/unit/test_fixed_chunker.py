"""The fixed-window baselines (``interval`` and ``frame`` trigger policies)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from eventvstream.events import Event
from eventvstream.events.fixed import FixedWindowChunker

FPS = 2.0


def feed(
    chunker: FixedWindowChunker, seconds: float, *, dim: int = 16, images: bool = True
) -> list[Event]:
    """``seconds`` of frames at FPS with random unit features, then flush at the stream end."""
    rng = np.random.default_rng(0)
    events: list[Event] = []
    for i in range(int(seconds * FPS)):
        feature = rng.standard_normal(dim).astype(np.float32)
        feature /= np.linalg.norm(feature)
        image = np.full((4, 6, 3), i, np.uint8) if images else None
        events += chunker.push(i / FPS, i, feature, image)
    return events + chunker.flush(seconds)


def test_interval_units_tile_the_stream() -> None:
    events = feed(FixedWindowChunker(2.0), 10.0)
    assert len(events) == 5
    assert [e.index for e in events] == list(range(5))
    assert [(e.start, e.end) for e in events] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    for before, after in itertools.pairwise(events):
        assert before.end == after.start  # contiguous [start, end)
    assert all(e.frame_count == 4 for e in events)
    assert sum(e.frame_count for e in events) == 20
    assert [e.closed_by.reason for e in events] == ["interval"] * 4 + ["end_of_stream"]
    assert events[0].opened_by.reason == "stream_start"
    for before, after in itertools.pairwise(events):
        assert after.opened_by == before.closed_by
    assert all(e.closed_by.threshold is None and e.closed_by.scores is None for e in events)


def test_a_partial_last_window_is_closed_by_flush() -> None:
    events = feed(FixedWindowChunker(3.0), 7.0)
    assert [(e.start, e.end) for e in events] == [(0, 3), (3, 6), (6, 7)]
    assert events[-1].closed_by.reason == "end_of_stream" and events[-1].frame_count == 2


def test_flush_without_frames_or_end_time() -> None:
    chunker = FixedWindowChunker(2.0)
    assert chunker.flush() == [] and chunker.flush(5.0) == []
    chunker.push(0.0, 0, np.ones(4, np.float32), None)
    chunker.push(0.5, 1, np.ones(4, np.float32), None)
    (event,) = chunker.flush()  # no end time: the last frame's time
    assert event.start == 0.0 and event.end == 0.5
    assert chunker.flush() == []  # nothing left


def test_frame_policy_makes_one_unit_per_frame() -> None:
    events = feed(FixedWindowChunker(0.0), 5.0)
    assert len(events) == 10
    assert all(e.frame_count == 1 for e in events)
    assert [e.start for e in events] == pytest.approx([i / FPS for i in range(10)])
    assert [e.end for e in events] == pytest.approx([(i + 1) / FPS for i in range(10)])
    assert [e.closed_by.reason for e in events] == ["interval"] * 9 + ["end_of_stream"]
    for i, event in enumerate(events):
        assert len(event.keyframes) == 1 and event.keyframes[0].frame_index == i


@pytest.mark.parametrize("pooling", ["mean", "boundary"])
def test_pooled_embeddings_are_unit_vectors(pooling: str) -> None:
    events = feed(FixedWindowChunker(2.0, pooling=pooling), 10.0, dim=32)
    for event in events:
        assert event.embedding.dtype == np.float32 and event.embedding.shape == (32,)
        assert np.linalg.norm(event.embedding) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("keyframes", [1, 3, 6])
def test_keyframes_lie_within_their_unit(keyframes: int) -> None:
    events = feed(FixedWindowChunker(2.0, keyframes=keyframes), 10.0)
    for event in events:
        assert len(event.keyframes) == min(keyframes, event.frame_count)
        times = [k.t for k in event.keyframes]
        assert times == sorted(times) and len(set(times)) == len(times)
        for keyframe in event.keyframes:
            assert event.start <= keyframe.t < event.end
            assert keyframe.frame_index == round(keyframe.t * FPS)
            assert keyframe.image is not None and keyframe.image[0, 0, 0] == keyframe.frame_index


def test_keyframes_without_images() -> None:
    events = feed(FixedWindowChunker(2.0), 4.0, images=False)
    assert all(k.image is None for e in events for k in e.keyframes)
