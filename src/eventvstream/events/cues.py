"""The three boundary cues, each a small stateful object fed one frame at a time.

Pure numpy: no I/O, no model code. Each cue returns a raw, non-negative score; normalisation to
comparable scales happens in :mod:`eventvstream.events.fusion`.
"""

from __future__ import annotations

import numpy as np

from eventvstream.events.predictor import OnlinePredictor

_CONTRAST_EPS = 1e-3


def grey_thumbnail(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Area-average an HxWx3 uint8 frame to a ``grid=(w, h)`` grey float32 image in [0, 1].

    Block averaging is both the cheapest resize and a low-pass filter, so sensor noise is
    averaged away before differencing.
    """
    gw, gh = grid
    h, w = image.shape[:2]
    ys = (np.arange(gh + 1) * h) // gh
    xs = (np.arange(gw + 1) * w) // gw
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    rows = np.add.reduceat(grey, ys[:-1], axis=0) / np.diff(ys)[:, None]
    cells = np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :]
    return cells / 255.0


def colour_histogram(image: np.ndarray, bins: int = 4) -> np.ndarray:
    """Joint RGB histogram (``bins``³ cells, sums to 1) of every 4th pixel each way.

    Blind to where things are in the frame, so an animal turning its head or a hand moving an
    object barely changes it, while a cut to another place or light usually does.
    """
    pixels = image[::4, ::4].reshape(-1, 3).astype(np.int32) * bins // 256
    codes = (pixels[:, 0] * bins + pixels[:, 1]) * bins + pixels[:, 2]
    counts = np.bincount(codes, minlength=bins**3).astype(np.float32)
    return counts / max(1.0, float(counts.sum()))


class MotionCue:
    """m_t: mean absolute difference of contrast-normalised grey thumbnails.

    Normalising each thumbnail to zero mean and unit variance first makes the cue blind to global
    brightness changes (flicker, auto-exposure, fades), which are not events; what remains is
    change in *structure*. Frames with almost no contrast are 'blank' (a fade through black): they
    are skipped, so motion is measured between the last informative frame and the next one.
    """

    def __init__(self, grid: tuple[int, int] = (32, 18), blank_std: float = 0.03) -> None:
        self.grid = grid
        self.blank_std = blank_std
        self._last: np.ndarray | None = None

    def is_blank(self, thumb: np.ndarray) -> bool:
        return float(thumb.std()) < self.blank_std

    @staticmethod
    def standardise(thumb: np.ndarray) -> np.ndarray:
        """Zero mean, unit variance: what is left is structure, not brightness."""
        return (thumb - thumb.mean()) / (thumb.std() + _CONTRAST_EPS)

    def score(self, thumb: np.ndarray) -> float:
        """Score a non-blank thumbnail against the last observed one (0 for the first)."""
        if self._last is None:
            return 0.0
        return float(np.abs(self.standardise(thumb) - self._last).mean())

    def observe(self, thumb: np.ndarray) -> None:
        """Make ``thumb`` the reference for the next score."""
        self._last = self.standardise(thumb)

    def update(self, thumb: np.ndarray) -> float:
        """Score, then observe."""
        value = self.score(thumb)
        self.observe(thumb)
        return value


class SemanticCue:
    """s_t = 1 - cos(f_t, f̄): distance of a frame from the current event's running mean.

    f̄ is a plain mean for the event's first 1/ρ frames and an EMA with rate ρ after that, so a
    new event's reference settles quickly yet follows slow drift (pans, zooms) later.
    """

    def __init__(self, rho: float = 0.1) -> None:
        self.rho = rho
        self.mean: np.ndarray | None = None
        self._count = 0

    def score(self, feature: np.ndarray) -> float:
        if self.mean is None:
            return 0.0
        norm = float(np.linalg.norm(self.mean))
        if norm == 0.0:
            return 0.0
        return float(1.0 - np.dot(feature, self.mean) / norm)

    def absorb(self, feature: np.ndarray) -> None:
        self._count += 1
        rate = max(self.rho, 1.0 / self._count)
        self.mean = feature.copy() if self.mean is None else (1 - rate) * self.mean + rate * feature

    def reset(self, features: list[np.ndarray] | None = None) -> None:
        """Start a new event, optionally seeded with the frames already known to belong to it."""
        self.mean = None
        self._count = 0
        for feature in features or []:
            self.absorb(feature)


class PredictiveCue:
    """c_t = ‖P(context) − f_t‖²: how badly a learned predictor foresaw this frame.

    The predictor is adapted online on consecutive frames of the same event, so it learns the
    stream's ordinary dynamics (a pan's steady drift, a zoom) and is surprised by a change of
    scene. It never learns across a boundary.
    """

    def __init__(self, dim: int, hidden: int = 64, lr: float = 0.05, seed: int = 0) -> None:
        self.predictor = OnlinePredictor(dim, hidden=hidden, lr=lr, seed=seed)
        self._prev: np.ndarray | None = None
        self._prev2: np.ndarray | None = None

    def score(self, feature: np.ndarray) -> float:
        if self._prev is None:
            return 0.0
        prediction = self.predictor.predict(self._prev, self._prev2)
        return float(np.sum((prediction - feature) ** 2))

    def observe(self, feature: np.ndarray, *, learn: bool) -> None:
        """Record the frame as context; learn (prev -> this) only within one event."""
        if learn and self._prev is not None:
            self.predictor.update(self._prev, self._prev2, feature)
        self._prev2, self._prev = self._prev, feature
