"""Cue normalisation, fusion and the adaptive threshold (pure arithmetic).

Raw cues live on different scales (a cosine distance, a pixel difference, a squared error), and
their typical values depend on the encoder and the footage. Each cue is therefore divided by its
own running "typical value" — an EMA of the cue over ordinary (non-boundary) frames, kept between
a floor and a ceiling — so a normalised score of 5 reads as "five times what this stream usually
does". The floor keeps a near-static stream, whose typical values are almost zero, from turning
sensor noise into huge ratios. The ceiling keeps fast-cut footage from numbing the detector:
there, cuts the detector could not separate (shots shorter than the minimum event) feed the
"typical" value, which would otherwise grow until no cut crosses the threshold any more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


class RunningScale:
    """EMA of a non-negative cue, kept in [floor, ceiling]; ``normalise(x) = x / scale``."""

    def __init__(self, floor: float, rate: float = 0.05, ceiling: float = float("inf")) -> None:
        if ceiling < floor:
            raise ValueError("ceiling must be >= floor")
        self.floor = floor
        self.ceiling = ceiling
        self.rate = rate
        self._ema: float | None = None

    @property
    def scale(self) -> float:
        ema = self._ema if self._ema is not None else 0.0
        return min(self.ceiling, max(self.floor, ema))

    def normalise(self, value: float) -> float:
        return value / self.scale

    def update(self, value: float) -> None:
        # Clip what one frame can teach the scale, so a burst of action does not numb it.
        value = min(value, 4.0 * self.scale)
        self._ema = value if self._ema is None else (1 - self.rate) * self._ema + self.rate * value


@dataclass(frozen=True)
class CueWeights:
    semantic: float = 1.0
    motion: float = 0.3
    predictive: float = 0.5


def fuse(semantic: float, motion: float, predictive: float, weights: CueWeights) -> float:
    """E_t = w_sem·s̃_t + w_mot·m̃_t + w_pred·c̃_t on normalised cues."""
    return weights.semantic * semantic + weights.motion * motion + weights.predictive * predictive


class AdaptiveThreshold:
    """τ_t = τ0 · Σw · (1 + η · Var(m̃ over the last ``window`` frames)).

    Scaling τ0 by the total weight keeps one meaning for τ0 ("how many times the typical value")
    whatever the weights are. Busy footage (high motion variance) raises the bar, so shaky or
    action-heavy stretches do not fire a boundary on every jolt.
    """

    def __init__(self, tau0: float, eta: float, window: int, weight_sum: float) -> None:
        self.tau0 = tau0
        self.eta = eta
        self.weight_sum = weight_sum if weight_sum > 0 else 1.0
        self._motion: deque[float] = deque(maxlen=window)

    def value(self) -> float:
        variance = float(np.var(self._motion)) if len(self._motion) >= 2 else 0.0
        return self.tau0 * self.weight_sum * (1.0 + self.eta * variance)

    def observe_motion(self, normalised_motion: float) -> None:
        """Feed an in-event frame's motion. Boundary frames are not fed, and values are clipped,
        so the spike of a cut does not raise the bar for the shots right after it."""
        self._motion.append(min(normalised_motion, 4.0))
