"""The streaming detector on constructed feature/image sequences."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.config import EventSettings
from eventvstream.events import EventDetector

STEP = 0.5  # 2 fps


class Exact:
    """A frame given exactly (no noise added), as opposed to a scene to draw a noisy view of."""

    def __init__(self, feature: np.ndarray, image: np.ndarray) -> None:
        self.feature, self.image = feature, image


def run(detector, factory, sequence, step=STEP):
    events = []
    for i, item in enumerate(sequence):
        if isinstance(item, Exact):
            feature, image = item.feature, item.image
        else:
            feature, image = factory.frame(item)
        events += detector.push(i * step, i, feature, image)
    return events + detector.flush()


def starts(events):
    return [e.start for e in events[1:]]


def test_hard_cuts_give_one_boundary_each_at_the_cut(scenes):
    a, b, c = scenes.scene(), scenes.scene(), scenes.scene()
    events = run(EventDetector(EventSettings()), scenes, [a] * 10 + [b] * 8 + [c] * 12)
    assert len(events) == 3
    # The cut lies between frames 9 (4.5 s) and 10 (5.0 s): refined to the midpoint.
    assert starts(events) == pytest.approx([4.75, 8.75])
    assert [e.frame_count for e in events] == [10, 8, 12]
    assert events[-1].end == pytest.approx(15.0)


def test_every_boundary_explains_itself(scenes):
    a, b = scenes.scene(), scenes.scene()
    events = run(EventDetector(EventSettings()), scenes, [a] * 8 + [b] * 8)
    opened = events[1].opened_by
    assert opened.reason == "cue"
    assert opened.scores is not None and opened.threshold is not None
    assert opened.scores.fused > opened.threshold
    assert opened.fired_at == pytest.approx(4.0)
    assert events[0].opened_by.reason == "stream_start"
    assert events[-1].closed_by.reason == "end_of_stream"
    assert events[0].closed_by == events[1].opened_by


def test_static_noisy_scene_has_no_boundary(scenes):
    a = scenes.scene()
    events = run(EventDetector(EventSettings()), scenes, [a] * 60)
    assert len(events) == 1


def test_brightness_flicker_is_not_an_event(scenes):
    a = scenes.scene()
    rng = np.random.default_rng(1)
    sequence = []
    for _ in range(60):
        feature, image = scenes.frame(a, noise=0.03)
        gain = rng.uniform(0.6, 1.4)
        sequence.append(Exact(feature, np.clip(image * gain, 0, 255).astype(np.uint8)))
    assert len(run(EventDetector(EventSettings()), scenes, sequence)) == 1


def test_min_event_length_suppresses_rapid_boundaries(scenes):
    a, b, c = scenes.scene(), scenes.scene(), scenes.scene()
    sequence = [a] * 10 + [b] * 2 + [c] * 10  # b lasts 1 s < min_event_s 1.5
    events = run(EventDetector(EventSettings(min_event_s=1.5)), scenes, sequence)
    assert len(events) == 2
    assert all(e.duration >= 1.5 for e in events[:-1])


def test_max_event_length_forces_a_boundary(scenes):
    a = scenes.scene()
    settings = EventSettings(min_event_s=1.0, max_event_s=10.0)
    events = run(EventDetector(settings), scenes, [a] * 50)
    assert [e.closed_by.reason for e in events] == ["max_length"] * 2 + ["end_of_stream"]
    assert all(e.duration <= 10.0 + 1e-9 for e in events)


def test_fade_through_black_is_one_boundary_in_the_dark(scenes):
    a, b = scenes.scene(), scenes.scene()
    dark_feature = np.full(scenes.dim, 1 / np.sqrt(scenes.dim), np.float32)
    black = Exact(dark_feature, np.full((72, 128, 3), 3, np.uint8))
    events = run(EventDetector(EventSettings()), scenes, [a] * 10 + [black] * 3 + [b] * 10)
    assert len(events) == 2
    # Dark frames at 5.0, 5.5, 6.0; the boundary lands between the last A and the first B.
    assert 4.5 < events[1].start < 6.5
    assert events[1].opened_by.reason == "cue"


def test_slow_drift_like_a_pan_is_not_an_event(scenes):
    rng = np.random.default_rng(2)
    start = np.abs(rng.standard_normal(scenes.dim)).astype(np.float32)
    end = np.abs(rng.standard_normal(scenes.dim)).astype(np.float32)
    big = rng.integers(0, 256, (18, 64, 3)).astype(np.uint8)
    big = np.kron(big, np.ones((4, 4, 1), np.uint8))  # 72 x 256 panorama
    sequence = []
    for i in range(60):
        w = i / 59
        feature = (1 - w) * start + w * end + 0.01 * rng.standard_normal(scenes.dim)
        feature = (feature / np.linalg.norm(feature)).astype(np.float32)
        x = int(i * 2)  # 2 px of 128 per frame: a steady pan
        sequence.append(Exact(feature, np.ascontiguousarray(big[:, x : x + 128])))
    assert len(run(EventDetector(EventSettings()), scenes, sequence)) == 1


def test_frame_times_must_increase(scenes):
    detector = EventDetector(EventSettings())
    feature, image = scenes.frame(scenes.scene())
    detector.push(1.0, 0, feature, image)
    with pytest.raises(ValueError, match="increase"):
        detector.push(1.0, 1, feature, image)


def test_events_carry_embedding_and_keyframes(scenes):
    a, b = scenes.scene(), scenes.scene()
    events = run(EventDetector(EventSettings(keyframes=3)), scenes, [a] * 12 + [b] * 12)
    for event, scene in zip(events, (a, b), strict=True):
        assert np.linalg.norm(event.embedding) == pytest.approx(1.0, abs=1e-5)
        assert float(event.embedding @ scene[0]) > 0.99
        assert 1 <= len(event.keyframes) <= 3
        assert all(event.start <= k.t < event.end for k in event.keyframes)
        assert all(k.image is not None for k in event.keyframes)


def test_trace_records_every_frame(scenes):
    a, b = scenes.scene(), scenes.scene()
    detector = EventDetector(EventSettings(), trace=True)
    run(detector, scenes, [a] * 6 + [b] * 6)
    assert detector.traces is not None and len(detector.traces) == 12
    assert sum(t.fired for t in detector.traces) == 1


def test_a_one_frame_flash_is_a_transient_not_an_event(scenes):
    a, flash = scenes.scene(), scenes.scene()
    detector = EventDetector(EventSettings(), trace=True)
    events = run(detector, scenes, [a] * 10 + [flash] + [a] * 10)
    assert len(events) == 1
    assert detector.traces is not None
    transients = [t for t in detector.traces if t.transient]
    assert [t.t for t in transients] == [5.0]
    assert not any(t.fired for t in detector.traces)


def test_a_boundary_is_confirmed_by_the_next_frame(scenes):
    """The boundary is only reported one frame after it fired (the confirmation latency)."""
    a, b = scenes.scene(), scenes.scene()
    detector = EventDetector(EventSettings())
    for i in range(10):
        assert detector.push(i * STEP, i, *scenes.frame(a)) == []
    assert detector.push(5.0, 10, *scenes.frame(b)) == []  # fires: pending
    closed = detector.push(5.5, 11, *scenes.frame(b))  # confirmed
    assert len(closed) == 1 and closed[0].end == pytest.approx(4.75)


def test_a_boundary_pending_at_the_end_of_the_stream_is_kept(scenes):
    a, b = scenes.scene(), scenes.scene()
    events = run(EventDetector(EventSettings()), scenes, [a] * 10 + [b])
    assert len(events) == 2 and events[1].start == pytest.approx(4.75)
