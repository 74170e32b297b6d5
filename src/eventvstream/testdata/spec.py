"""What a synthetic clip is: shots of real photographs, a moving virtual camera, transitions.

Plain frozen dataclasses (deterministic, comparable) plus the photo loader; ``frames.py`` turns a
:class:`ClipSpec` into pixels, ``clips.py`` builds the canned ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from PIL import Image

_RGB = (
    "astronaut chelsea coffee rocket immunohistochemistry hubble_deep_field retina colorwheel logo"
)
_GREY = "camera moon page text clock coins brick grass gravel cell"
RGB_PHOTOS, GREY_PHOTOS = tuple(_RGB.split()), tuple(_GREY.split())
PHOTOS = RGB_PHOTOS + GREY_PHOTOS
# Tints for greyscale photos, so two grey shots in a row still differ the way footage does.
TINTS = ((1, 1, 1), (1.08, 0.95, 0.78), (0.82, 0.93, 1.1), (0.9, 1.05, 0.85), (1.1, 0.88, 0.95))
TRANSITION_CATEGORIES = ("cuts", "dissolves", "fades")
DISTRACTOR_CATEGORIES = ("pan", "zoom", "flicker", "noise")
FADE_HOLD = 0.2  # fraction of a fade spent fully black
PathLike = str | os.PathLike[str]
Length = float | tuple[float, float]  # a fixed length in seconds, or a range to draw from


@dataclass(frozen=True)
class View:
    """Where the virtual camera looks: centre (0..1 of the photo) and size (1 = widest crop)."""

    cx: float = 0.5
    cy: float = 0.5
    size: float = 0.9


@dataclass(frozen=True)
class Camera:
    """Keyframed views, evenly spaced over the shot; eased so the camera starts and stops softly."""

    views: tuple[View, ...] = (View(),)

    def at(self, u: float) -> View:
        if len(self.views) == 1:
            return self.views[0]
        pos = min(max(u, 0.0), 1.0) * (len(self.views) - 1)
        i = min(int(pos), len(self.views) - 2)
        f = pos - i
        f = f * f * (3 - 2 * f)  # smoothstep: no jerks at the keyframes
        a, b = (np.array([v.cx, v.cy, v.size]) for v in self.views[i : i + 2])
        return View(*(float(x) for x in a + (b - a) * f))


@dataclass(frozen=True)
class Shot:
    photo: str
    duration: float
    camera: Camera = Camera()
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Transition:
    """How a shot hands over to the next; ``duration`` is 0 for a cut."""

    kind: Literal["cut", "dissolve", "fade"] = "cut"
    duration: float = 0.0


@dataclass(frozen=True)
class Flicker:
    """Per-frame brightness gain drawn uniformly in [low, high], plus random white flashes."""

    low: float = 0.7
    high: float = 1.3
    flashes_per_s: float = 0.25
    flash_strength: tuple[float, float] = (0.5, 0.9)


@dataclass(frozen=True)
class ClipSpec:
    category: str
    shots: tuple[Shot, ...]
    transitions: tuple[Transition, ...] = ()
    seed: int = 0
    noise_sigma: float = 2.0  # in 0..255 units
    flicker: Flicker | None = None
    crf: int = 20

    def __post_init__(self) -> None:
        if not self.shots:
            raise ValueError("a clip needs at least one shot")
        if len(self.transitions) != len(self.shots) - 1:
            raise ValueError("need exactly one transition between consecutive shots")
        for i, tr in enumerate(self.transitions):
            room = min(self.shots[i].duration, self.shots[i + 1].duration)
            if tr.duration >= room:
                raise ValueError(f"transition {i} ({tr.duration}s) longer than its shots")

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.shots)


@lru_cache(maxsize=32)
def load_photo(name: str, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Image.Image:
    """A scikit-image sample photo as an RGB PIL image (greyscale promoted, alpha dropped)."""
    from skimage import data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    arr = np.asarray(getattr(data, name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    arr = arr[:, :, :3].astype(np.float32) * np.asarray(tint, np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
