"""StreamSampler (one frame at a time) picks the same frames as sample_indices (all at once)."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.media.sampling import StreamSampler, sample_indices


def streamed(pts: np.ndarray, fps: float) -> list[int]:
    sampler = StreamSampler(fps)
    taken = [i for i, t in enumerate(pts) if sampler.take(float(t))]
    if (not taken or taken[-1] != len(pts) - 1) and sampler.take_last(float(pts[-1])):
        taken.append(len(pts) - 1)
    assert sampler.taken == len(taken)
    return taken


@pytest.mark.parametrize("seed", range(40))
def test_matches_the_batch_sampler_on_irregular_clocks(seed):
    rng = np.random.default_rng(seed)
    native = rng.choice([5.0, 12.5, 23.976, 25.0, 30.0, 60.0])
    gaps = rng.choice([1.0, 1.0, 1.0, 2.0, 7.0], size=int(rng.integers(2, 400))) / native
    pts = np.concatenate([[0.0], np.cumsum(gaps)])  # variable frame rate, dropped frames
    fps = float(rng.choice([0.5, 1.0, 2.0, 4.0, 10.0]))
    assert streamed(pts, fps) == sample_indices(pts, fps).tolist()


def test_constant_rate_clip():
    pts = np.arange(250) / 25.0
    expected = [*np.ceil(np.arange(20) * 12.5).astype(int).tolist(), 249]
    assert streamed(pts, 2.0) == expected


def test_slow_source_gives_every_frame_once():
    pts = np.arange(10) * 2.0  # one frame every 2 s, sampled at 2 fps
    assert streamed(pts, 2.0) == list(range(10))


def test_rejects_a_non_positive_rate():
    with pytest.raises(ValueError):
        StreamSampler(0.0)
