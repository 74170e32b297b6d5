"""Pooling, keyframes, the image reservoir, boundary metrics and frame sampling."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.events.metrics import match_boundaries, score_boundaries, total
from eventvstream.events.pooling import ImageReservoir, choose_keyframes, pool_embedding
from eventvstream.media.sampling import sample_indices


def test_boundary_pooling_weights_the_ends_more():
    features = np.eye(3, dtype=np.float32)
    times = np.array([0.0, 5.0, 10.0])
    mean = pool_embedding(features, times, "mean")
    edge = pool_embedding(features, times, "boundary")
    assert np.linalg.norm(edge) == pytest.approx(1.0)
    np.testing.assert_allclose(mean, np.full(3, 1 / np.sqrt(3)), atol=1e-6)
    assert edge[0] > edge[1] and edge[2] > edge[1]


def test_pooling_rejects_empty_events():
    with pytest.raises(ValueError):
        pool_embedding(np.zeros((0, 4), np.float32), np.zeros(0))


def test_keyframes_start_at_the_medoid_then_cover_the_event():
    features = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.98, 0.2]], dtype=np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    pooled = np.array([1.0, 0.0], np.float32)
    picks = choose_keyframes(features, pooled, 2)
    assert picks == [0, 2]  # medoid, then the most different frame
    assert choose_keyframes(features, pooled, 10) == [0, 1, 2, 3]


def test_reservoir_stays_bounded_and_even():
    reservoir = ImageReservoir(4)
    for position in range(100):
        reservoir.offer(position, np.zeros((1, 1, 3), np.uint8))
    positions = reservoir.positions()
    assert len(positions) <= 4
    assert positions[0] == 0
    gaps = np.diff(positions)
    assert len(set(gaps.tolist())) == 1  # evenly spaced


def test_metrics_one_to_one_matching():
    truth = [5.0, 10.0]
    predicted = [4.9, 5.1, 10.8]
    assert sorted(match_boundaries(predicted, truth, 0.5)) == [(0, 0)]
    at_half = score_boundaries(predicted, truth, 0.5)
    assert (at_half.tp, at_half.fp, at_half.fn) == (1, 2, 1)
    at_one = score_boundaries(predicted, truth, 1.0)
    assert (at_one.tp, at_one.fp, at_one.fn) == (2, 1, 0)
    assert at_one.precision == pytest.approx(2 / 3)
    assert at_one.recall == 1.0
    assert at_one.f1 == pytest.approx(0.8)


def test_metrics_empty_cases_and_micro_average():
    nothing = score_boundaries([], [], 1.0)
    assert nothing.f1 == 1.0  # a distractor clip with no predictions is perfect
    false_alarm = score_boundaries([3.0], [], 1.0)
    assert false_alarm.precision == 0.0 and false_alarm.fp == 1
    combined = total([score_boundaries([1.0], [1.0], 1.0), false_alarm])
    assert combined is not None and (combined.tp, combined.fp, combined.fn) == (1, 1, 0)
    assert total([]) is None


def test_sampling_takes_real_frames_on_a_fixed_clock():
    pts = np.arange(0, 300) / 30.0  # 10 s at 30 fps: ticks 0..9.5, then the last frame (9.97)
    idx = sample_indices(pts, 2.0)
    assert len(idx) == 21
    np.testing.assert_allclose(pts[idx[:20]], np.arange(20) / 2.0)
    assert idx[-1] == 299


def test_sampling_skips_a_last_frame_close_to_the_last_tick():
    pts = np.arange(0, 291) / 30.0  # ends at 9.667 s: only 0.17 s after the 9.5 s tick
    assert sample_indices(pts, 2.0)[-1] == 285


def test_sampling_a_slow_source_yields_each_frame_once():
    pts = np.arange(0, 10) / 1.0  # 1 fps source sampled at 2 fps
    idx = sample_indices(pts, 2.0)
    assert idx.tolist() == list(range(10))


def test_sampling_handles_variable_frame_rate():
    pts = np.array([0.0, 0.04, 0.5, 0.52, 0.9, 1.7, 2.0])
    idx = sample_indices(pts, 2.0)
    np.testing.assert_allclose(pts[idx], [0.0, 0.5, 1.7, 2.0])
    with pytest.raises(ValueError):
        sample_indices(pts, 0)
