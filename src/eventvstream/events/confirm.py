"""Did a change last? The test a candidate boundary must pass before it becomes one.

A frame whose cues cross the threshold is only a *candidate*: lively footage (an animal turning
its head, a hand moving an object close to the lens) makes single frames jump away from the
event's running mean all the time. A cut is different in one way that holds across content: the
frames after it agree with each other and with the first new frame, not with the event before.
So the detector waits a few sampled frames and compares the *mean of a window after* the
candidate with the candidate and with the *mean of the event before* it — windows, not single
frames, which is what averages pose and framing away. Optionally the colours must have moved
too (a histogram is blind to where things are in the frame).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (float(np.linalg.norm(vector)) or 1.0)


def semantic_shift(
    candidate: np.ndarray, after: Sequence[np.ndarray], before_mean: np.ndarray
) -> float:
    """cos(mean after, candidate) − cos(mean after, mean before): > 0 when the frames after the
    candidate side with it rather than with the event before."""
    after_mean = _unit(np.mean(after, axis=0))
    return float(after_mean @ _unit(candidate)) - float(after_mean @ _unit(before_mean))


def colour_shift(after: Sequence[np.ndarray], before: np.ndarray) -> float:
    """Half the L1 distance between the mean histogram after and the one before, in [0, 1]."""
    return 0.5 * float(np.abs(np.mean(after, axis=0) - before).sum())


def change_persists(
    candidate: np.ndarray,
    after: Sequence[np.ndarray],
    before_mean: np.ndarray,
    *,
    margin: float = 0.0,
    colours_after: Sequence[np.ndarray] = (),
    colours_before: np.ndarray | None = None,
    colour_min: float = 0.0,
    strong: float = 2.0,
) -> bool:
    """The boundary stands if the semantic shift is at least ``margin`` and, when
    ``colour_min`` > 0, the colours moved by at least that much — unless the semantic shift
    alone reaches ``strong`` (a cut between two places lit alike)."""
    shift = semantic_shift(candidate, after, before_mean)
    if shift < margin:
        return False
    if colour_min <= 0 or colours_before is None or not colours_after or shift >= strong:
        return True
    return colour_shift(colours_after, colours_before) >= colour_min
