"""Hard-cut placement on full-frame-rate thumbnails (events.refine) and its use by the detector."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.config import EventSettings
from eventvstream.events import EventDetector
from eventvstream.events.cues import grey_thumbnail
from eventvstream.events.placement import exact_cut
from eventvstream.events.refine import frame_jumps, locate_cut

FPS = 25.0


def _texture(seed: int, shape=(18, 32)) -> np.ndarray:
    """Blocky texture: neighbouring pixels agree, as in footage (white noise would make a
    one-pixel shift look like a new picture)."""
    coarse = np.random.default_rng(seed).random((shape[0] // 3, shape[1] // 4))
    return np.kron(coarse, np.ones((3, 4))).astype(np.float32)


def _shot(seed: int, n: int, drift: float = 0.0, noise: float = 0.01) -> list[np.ndarray]:
    """n frames of one textured shot, drifting sideways, with a little sensor noise."""
    base = np.tile(_texture(seed), (1, 3))
    rng = np.random.default_rng(seed + 100)
    out = []
    for i in range(n):
        x, frac = int(i * drift), i * drift % 1.0  # sub-pixel motion, as a real pan
        view = (1 - frac) * base[:, x : x + 32] + frac * base[:, x + 1 : x + 33]
        frame = view + rng.normal(0, noise, (18, 32))
        out.append(frame.astype(np.float32))
    return out


def _timed(frames: list[np.ndarray], t0: float = 0.0) -> list[tuple[float, np.ndarray]]:
    return [(t0 + i / FPS, f) for i, f in enumerate(frames)]


def test_a_hard_cut_is_placed_on_the_first_frame_of_the_new_shot():
    frames = _timed(_shot(1, 9, drift=0.5) + _shot(2, 8, drift=0.5), t0=10.0)
    assert locate_cut(frames) == pytest.approx(10.0 + 9 / FPS)


def test_a_dissolve_has_no_single_cut_frame():
    a, b = _shot(1, 13), _shot(2, 13)
    blend = [(1 - w) * x + w * y for w, x, y in zip(np.linspace(0, 1, 13), a, b, strict=True)]
    assert locate_cut(_timed(blend)) is None


def test_steady_motion_has_no_cut_frame():
    assert locate_cut(_timed(_shot(3, 15, drift=1.0))) is None


def test_a_fade_in_brightness_alone_is_not_a_jump():
    base = _texture(4)
    ramp = [base * g + 0.001 * i for i, g in enumerate(np.linspace(1.0, 0.3, 12))]
    assert frame_jumps(ramp).max() < 0.05


def test_too_few_frames_give_no_answer():
    assert locate_cut(_timed(_shot(1, 1) + _shot(2, 1))) is None


class _Video:
    """A synthetic video at 25 fps: sampled frames for the detector, every frame for refine."""

    def __init__(self, shots: list[tuple[int, int]]) -> None:
        rng = np.random.default_rng(0)
        self.images, self.features = [], []
        for seed, n in shots:
            tex = (np.kron(_texture(seed, (9, 16)), np.ones((20, 20))) * 255).astype(np.uint8)
            feature = rng.normal(size=64).astype(np.float32)
            for _ in range(n):
                noisy = np.clip(tex + rng.normal(0, 2, tex.shape), 0, 255).astype(np.uint8)
                self.images.append(np.repeat(noisy[..., None], 3, axis=2))
                f = feature + rng.normal(0, 0.05, 64).astype(np.float32)
                self.features.append(f / np.linalg.norm(f))
        self.calls: list[tuple[float, float]] = []

    def window(self, start: float, end: float) -> list[tuple[float, np.ndarray]]:
        self.calls.append((start, end))
        lo, hi = int(np.ceil(start * FPS - 1e-6)), int(np.floor(end * FPS + 1e-6))
        hi = min(hi, len(self.images) - 1)
        return [(i / FPS, grey_thumbnail(self.images[i], (32, 18))) for i in range(lo, hi + 1)]

    def run(self, detector: EventDetector, every: int = 12) -> list:
        events = []
        for i in range(0, len(self.images), every):  # ~2 fps sampling
            events += detector.push(i / FPS, i, self.features[i], self.images[i])
        return events + detector.flush(len(self.images) / FPS)


def test_detector_places_a_hard_cut_on_its_frame_when_given_a_frame_window():
    video = _Video([(1, 107), (2, 100)])  # the cut is at frame 107 = 4.28 s
    coarse = video.run(EventDetector(EventSettings()))
    exact = video.run(EventDetector(EventSettings(), frame_window=video.window))
    assert len(coarse) == len(exact) == 2
    assert abs(coarse[1].start - 107 / FPS) > 0.1  # sampled every 12 frames: off by frames
    assert exact[1].start == pytest.approx(107 / FPS)
    assert exact[0].end == exact[1].start
    assert video.calls  # it asked for the frames around the boundary


def test_a_change_that_does_not_last_over_the_confirmation_window_is_no_boundary():
    """Frames that leave the event's look for one sample and then come back (a head turned,
    a flash) are not a boundary when the detector waits two frames for confirmation."""
    rng = np.random.default_rng(5)
    base, other = rng.normal(size=64), rng.normal(size=64)
    image = np.full((90, 160, 3), 128, np.uint8)
    image[::2] = 60
    sequence = [base] * 12 + [other, other * 0.2 + base] + [base] * 12

    def run(confirm: int) -> int:
        detector = EventDetector(EventSettings(confirm_frames=confirm))
        events = []
        for i, f in enumerate(sequence):
            f = f + rng.normal(0, 0.02, 64)
            events += detector.push(i * 0.5, i, (f / np.linalg.norm(f)).astype(np.float32), image)
        return len(events + detector.flush())

    assert run(2) == 1


def test_with_a_radius_a_cut_is_found_beside_motion_elsewhere_in_a_long_window():
    """A 1.5-s look-back window may hold a burst of fast motion far from the cut: judged against
    the whole window the cut is not dominant, judged against its neighbours it is."""
    calm, fast = _shot(1, 20, drift=0.2), _shot(3, 8, drift=2.5)
    frames = _timed(fast + calm + _shot(2, 10, drift=0.2))
    jumps = frame_jumps([f for _t, f in frames])
    cut = len(fast) + len(calm)
    assert jumps[cut - 1] < 3.0 * np.delete(jumps, cut - 1).max()  # whole-window test fails
    assert locate_cut(frames) is None
    assert locate_cut(frames, radius=6) == pytest.approx(cut / FPS)


def test_with_a_radius_steady_motion_still_has_no_cut_frame():
    assert locate_cut(_timed(_shot(3, 40, drift=1.0)), radius=6) is None


def test_a_window_that_starts_on_the_cut_keyframe_uses_the_sample_before():
    """Encoders put a keyframe on a cut, so the decoder's window may begin on the new shot's
    first frame: the jump into it is then only visible against the last sample before."""
    old, new = _shot(1, 30, drift=0.3), _shot(2, 30, drift=0.3)
    recent = [(0.0, old[0]), (12 / FPS, old[12]), (24 / FPS, old[24])]
    fired = 36 / FPS  # the first sample of the new shot: the cut (frame 30) lies before it

    def window(start: float, end: float) -> list[tuple[float, np.ndarray]]:
        # the keyframe is the cut frame: nothing before it comes back
        return [(i / FPS, new[i - 30]) for i in range(30, 60) if start <= i / FPS <= end]

    cut = exact_cut(
        window, centre=30 / FPS, fired=fired, event_start=0.0, recent=recent, dominance=3.0
    )
    assert cut == pytest.approx(30 / FPS)
