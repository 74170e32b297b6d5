"""The canned clips: transitions (cuts, dissolves, fades) and distractors (pan, zoom, flicker,
noise), each a deterministic function of its seed. Specs only; ``render.py`` encodes them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np

from eventvstream.testdata.spec import (
    DISTRACTOR_CATEGORIES,
    GREY_PHOTOS,
    PHOTOS,
    RGB_PHOTOS,
    TINTS,
    TRANSITION_CATEGORIES,
    Camera,
    ClipSpec,
    Flicker,
    Length,
    Shot,
    Transition,
    View,
)


def _ken_burns(rng: np.random.Generator, drift: float = 0.04) -> Camera:
    """A slow push-in/pull-out with a sideways drift of a few percent over the shot."""
    s0 = rng.uniform(0.75, 0.92)
    cx, cy = rng.uniform(0.42, 0.58, 2)
    dx, dy = rng.uniform(-drift, drift, 2)
    s1 = s0 * rng.uniform(1 - 1.5 * drift, 1 + 1.5 * drift)
    return Camera((View(cx, cy, s0), View(cx + dx, cy + dy, min(s1, 1.0))))


def _pick_shots(rng: np.random.Generator, n: int, shot_s: tuple[float, float]) -> list[Shot]:
    photos = rng.choice(PHOTOS, size=n, replace=n > len(PHOTOS))
    shots = []
    for name in photos:
        tint = TINTS[int(rng.integers(len(TINTS)))] if name in GREY_PHOTOS else (1.0, 1.0, 1.0)
        shots.append(Shot(str(name), float(rng.uniform(*shot_s)), _ken_burns(rng), tint))
    return shots


def _transition_clip(
    category: str,
    kind: Literal["cut", "dissolve", "fade"],
    seed: int,
    length: Length,
    n_shots: int | None = None,
    shot_s: tuple[float, float] = (3.0, 6.0),
) -> ClipSpec:
    rng = np.random.default_rng([seed, TRANSITION_CATEGORIES.index(category)])
    n = int(n_shots if n_shots is not None else rng.integers(5, 8))
    shots = _pick_shots(rng, n, shot_s)
    lens = [
        float(rng.uniform(*length)) if isinstance(length, tuple) else float(length)
        for _ in range(n - 1)
    ]
    return ClipSpec(category, tuple(shots), tuple(Transition(kind, d) for d in lens), seed)


def cuts_clip(seed: int, **kw: Any) -> ClipSpec:
    """5-7 photos (3-6 s each) joined by hard cuts; truth = first frame of each new shot.

    Like the other transition builders it takes ``n_shots`` and ``shot_s`` (a range in s).
    """
    return _transition_clip("cuts", "cut", seed, length=0.0, **kw)


def dissolves_clip(seed: int, *, dissolve_s: Length = 1.0, **kw: Any) -> ClipSpec:
    """Cross-dissolves (fixed length, or drawn per transition from a range); truth = midpoint."""
    return _transition_clip("dissolves", "dissolve", seed, length=dissolve_s, **kw)


def fades_clip(seed: int, *, fade_s: Length = 1.0, **kw: Any) -> ClipSpec:
    """Fade to black and back in (20% of it fully black); truth = middle of the black."""
    return _transition_clip("fades", "fade", seed, length=fade_s, **kw)


def _one_shot(
    category: str, seed: int, photos: tuple[str, ...], duration_s: float | None, camera, **kw: Any
) -> ClipSpec:
    rng = np.random.default_rng([seed, 100 + DISTRACTOR_CATEGORIES.index(category)])
    photo = str(rng.choice(photos))
    dur = float(duration_s if duration_s is not None else rng.uniform(20.0, 30.0))
    return ClipSpec(category, (Shot(photo, dur, camera(rng)),), seed=seed, **kw)


def pan_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """A slow-to-moderate pan over a narrow window of one big photo, changing direction."""

    def camera(rng: np.random.Generator) -> Camera:
        size = rng.uniform(0.4, 0.55)
        xs = [0.15, 0.85, 0.35, 0.8] if rng.random() < 0.5 else [0.85, 0.15, 0.65, 0.2]
        ys = rng.uniform(0.25, 0.75, len(xs))
        return Camera(tuple(View(x, float(y), size) for x, y in zip(xs, ys, strict=True)))

    return _one_shot("pan", seed, ("hubble_deep_field", "retina", "astronaut"), duration_s, camera)


def zoom_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """Zoom in to ~2.5x and back out, twice, on one photo."""

    def camera(rng: np.random.Generator) -> Camera:
        cx, cy = rng.uniform(0.35, 0.65, 2)
        sizes = (1.0, rng.uniform(0.35, 0.45), 0.9, rng.uniform(0.4, 0.5), 1.0)
        return Camera(tuple(View(cx, cy, float(s)) for s in sizes))

    photos = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina")
    return _one_shot("zoom", seed, photos, duration_s, camera)


def flicker_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """One photo, gentle drift, per-frame gain 0.7-1.3 and a white flash every ~4 s.

    Dark photos (hubble_deep_field) are left out: a gain on near-black pixels changes little.
    """
    photos = tuple(p for p in RGB_PHOTOS if p != "hubble_deep_field")
    drift = lambda r: _ken_burns(r, 0.08)  # noqa: E731
    return _one_shot("flicker", seed, photos, duration_s, drift, flicker=Flicker())


def noise_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """One photo under heavy sensor noise (sigma 15-25 of 255), compressed at crf 23.

    Not harder: at crf 28 x264 quantises most of the noise away (frame-to-frame difference
    drops from ~24 to ~5 grey levels) and the clip stops being a noise test.
    """
    sigma = float(np.random.default_rng([seed, 999]).uniform(15.0, 25.0))
    drift = lambda r: _ken_burns(r, 0.08)  # noqa: E731
    return _one_shot("noise", seed, RGB_PHOTOS, duration_s, drift, noise_sigma=sigma, crf=23)


BUILDERS = {
    "cuts": cuts_clip,
    "dissolves": dissolves_clip,
    "fades": fades_clip,
    "pan": pan_clip,
    "zoom": zoom_clip,
    "flicker": flicker_clip,
    "noise": noise_clip,
}


def cuts_of_length(rng: np.random.Generator, total_s: float, seed: int) -> ClipSpec:
    """Hard cuts of ~3-6 s shots stretched to exactly ``total_s``; first and last photo differ."""
    while True:
        shots = _pick_shots(rng, max(2, round(total_s / 4.5)), (3.0, 6.0))
        if shots[0].photo != shots[-1].photo:
            break
    scale = total_s / sum(s.duration for s in shots)
    shots = [replace(s, duration=s.duration * scale) for s in shots]
    return ClipSpec("cuts", tuple(shots), (Transition(),) * (len(shots) - 1), seed)
