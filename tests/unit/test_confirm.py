"""The persistence test a candidate boundary must pass (events.confirm)."""

from __future__ import annotations

import numpy as np

from eventvstream.events.confirm import change_persists, colour_shift, semantic_shift
from eventvstream.events.cues import colour_histogram


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


rng = np.random.default_rng(0)
OLD, NEW = rng.normal(size=64), rng.normal(size=64)


def _near(centre: np.ndarray, n: int, spread: float) -> list[np.ndarray]:
    return [_unit(centre + rng.normal(0, spread, 64)) for _ in range(n)]


def test_a_cut_persists_the_frames_after_side_with_the_candidate():
    candidate, after = _unit(NEW + rng.normal(0, 0.2, 64)), _near(NEW, 3, 0.2)
    assert semantic_shift(candidate, after, _unit(OLD)) > 0.5
    assert change_persists(candidate, after, _unit(OLD), margin=0.1)


def test_lively_footage_one_odd_pose_then_back_to_the_usual_does_not_persist():
    """The event's mean averages many poses, so later frames are closer to it than to one
    odd pose: each pose is the mean plus its own large deviation."""
    poses = _near(OLD, 40, 1.0)
    before = _unit(np.mean(poses[:30], axis=0))
    candidate, after = poses[30], poses[31:34]
    assert semantic_shift(candidate, after, before) < 0
    assert not change_persists(candidate, after, before)


def test_colour_shift_is_zero_for_the_same_picture_and_one_for_disjoint_colours():
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 250
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[..., 2] = 250
    h_red, h_blue = colour_histogram(red), colour_histogram(blue)
    assert h_red.sum() == np.float32(1.0)
    assert colour_shift([h_red], h_red) == 0.0
    assert colour_shift([h_blue], h_red) == 1.0


def test_the_colour_requirement_can_veto_a_semantic_change():
    candidate, after = _unit(NEW), _near(NEW, 2, 0.1)
    same = [colour_histogram(np.full((8, 8, 3), 90, np.uint8))] * 3
    kwargs = {"colours_after": same, "colours_before": same[0]}
    assert change_persists(candidate, after, _unit(OLD), **kwargs, colour_min=0.0)
    assert not change_persists(candidate, after, _unit(OLD), **kwargs, colour_min=0.1)
