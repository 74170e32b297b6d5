"""Each cue, the normaliser, fusion and the adaptive threshold, in isolation."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.events.cues import MotionCue, PredictiveCue, SemanticCue, grey_thumbnail
from eventvstream.events.fusion import AdaptiveThreshold, CueWeights, RunningScale, fuse
from eventvstream.events.predictor import OnlinePredictor


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_grey_thumbnail_is_an_area_average():
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 4:] = 255
    thumb = grey_thumbnail(image, (2, 1))
    assert thumb.shape == (1, 2)
    assert thumb[0, 0] == pytest.approx(0.0)
    assert thumb[0, 1] == pytest.approx(1.0, abs=1e-3)


def test_motion_ignores_global_brightness_but_sees_structure():
    rng = np.random.default_rng(0)
    thumb = rng.uniform(0.2, 0.6, (18, 32)).astype(np.float32)
    cue = MotionCue()
    assert cue.update(thumb) == 0.0  # first frame: nothing to compare
    assert cue.update(thumb * 1.5 + 0.1) < 0.01
    assert cue.update(rng.uniform(0.2, 0.6, (18, 32)).astype(np.float32)) > 0.5


def test_blank_frames_are_detected_by_contrast():
    cue = MotionCue(blank_std=0.03)
    assert cue.is_blank(np.full((18, 32), 0.02, np.float32))
    assert not cue.is_blank(np.linspace(0, 1, 18 * 32, dtype=np.float32).reshape(18, 32))


def test_semantic_distance_to_running_mean():
    a, b = unit(np.array([1.0, 0, 0])), unit(np.array([0, 1.0, 0]))
    cue = SemanticCue(rho=0.5)
    assert cue.score(a) == 0.0
    cue.absorb(a)
    assert cue.score(a) == pytest.approx(0.0, abs=1e-6)
    assert cue.score(b) == pytest.approx(1.0, abs=1e-6)
    cue.absorb(b)  # second frame: plain mean of a and b
    assert cue.score(a) == pytest.approx(1 - 1 / np.sqrt(2), abs=1e-5)
    cue.reset()
    assert cue.mean is None


def test_semantic_mean_follows_drift_with_ema():
    cue = SemanticCue(rho=0.5)
    for _ in range(10):
        cue.absorb(unit(np.array([1.0, 0, 0])))
    for _ in range(10):
        cue.absorb(unit(np.array([0, 1.0, 0])))
    assert cue.score(unit(np.array([0, 1.0, 0]))) < 0.01


def test_online_predictor_learns_steady_drift():
    """A pan is a steady drift in feature space: after adapting, the predictor foresees it far
    better than 'nothing changes' does."""
    rng = np.random.default_rng(0)
    dim = 32
    basis = rng.standard_normal((2, dim)).astype(np.float32)
    frames = [unit(basis[0] * np.cos(a) + basis[1] * np.sin(a)) for a in np.linspace(0, 3, 400)]
    predictor = OnlinePredictor(dim, hidden=32, lr=0.1, seed=0)
    identity_err, learned_err = [], []
    for t in range(2, len(frames)):
        prev, prev2, target = frames[t - 1], frames[t - 2], frames[t]
        identity_err.append(float(np.sum((prev - target) ** 2)))
        learned_err.append(predictor.update(prev, prev2, target))
    assert np.mean(learned_err[-50:]) < 0.3 * np.mean(identity_err[-50:])
    assert predictor.updates == len(frames) - 2


def test_frozen_predictor_is_identity():
    predictor = OnlinePredictor(8, lr=0.0)
    x = unit(np.arange(1, 9, dtype=np.float32))
    predictor.update(x, None, unit(np.ones(8, np.float32)))
    np.testing.assert_allclose(predictor.predict(x), x)
    assert predictor.updates == 0


def test_predictive_cue_scores_surprise_and_never_learns_across_boundaries():
    a, b = unit(np.array([1.0, 0, 0, 0])), unit(np.array([0, 0, 1.0, 0]))
    cue = PredictiveCue(4, hidden=4, lr=0.1)
    assert cue.score(a) == 0.0
    cue.observe(a, learn=True)
    assert cue.score(a) == pytest.approx(0.0)
    assert cue.score(b) == pytest.approx(2.0)
    cue.observe(b, learn=False)
    assert cue.predictor.updates == 0


def test_running_scale_has_a_floor_and_clips_bursts():
    scale = RunningScale(floor=0.1, rate=0.5)
    assert scale.normalise(0.5) == pytest.approx(5.0)  # floor before any data
    scale.update(0.01)
    assert scale.scale == pytest.approx(0.1)  # never below the floor
    scale.update(100.0)  # a burst teaches at most 4x the current scale
    assert scale.scale <= 0.5 * 0.01 + 0.5 * 0.4 + 1e-9


def test_fusion_is_the_weighted_sum():
    weights = CueWeights(semantic=1.0, motion=0.5, predictive=0.25)
    assert fuse(2.0, 4.0, 8.0, weights) == pytest.approx(6.0)


def test_threshold_rises_with_motion_variance():
    threshold = AdaptiveThreshold(tau0=2.0, eta=1.0, window=4, weight_sum=1.5)
    assert threshold.value() == pytest.approx(3.0)
    for value in (1.0, 1.0, 1.0, 1.0):
        threshold.observe_motion(value)
    assert threshold.value() == pytest.approx(3.0)  # steady motion: no variance
    for value in (0.0, 3.0, 0.0, 3.0):
        threshold.observe_motion(value)
    assert threshold.value() == pytest.approx(3.0 * (1 + 2.25))
