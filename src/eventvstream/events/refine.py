"""Place a hard cut on the exact frame, from full-frame-rate thumbnails around a boundary.

The detector samples a few frames per second, so a boundary it confirms is only known to lie
between two samples (0.5 s apart at 2 fps), and its change-weighted refinement puts a hard cut
at their midpoint: up to a quarter second, several source frames, off. The decoder can return
every frame around that time; here, pure arithmetic on those frames' grey thumbnails says
whether the change is one jump between two consecutive frames (a hard cut: the boundary moves
to the first frame after the jump) or spread over many (a dissolve, a fade, motion: the
boundary stays where it was, because there is no single frame to move it to).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from eventvstream.events.cues import MotionCue

# (start_s, end_s) -> [(t, grey thumbnail)] of every source frame in that span, in time order.
FrameWindow = Callable[[float, float], Sequence[tuple[float, np.ndarray]]]


def frame_jumps(thumbs: Sequence[np.ndarray]) -> np.ndarray:
    """Mean absolute difference between consecutive contrast-normalised thumbnails (the motion
    cue's measure, so brightness ramps of a fade do not look like jumps)."""
    if len(thumbs) < 2:
        return np.zeros(0)
    std = [MotionCue.standardise(np.asarray(t, dtype=np.float32)) for t in thumbs]
    return np.array([float(np.abs(b - a).mean()) for a, b in itertools.pairwise(std)])


def locate_cut(
    frames: Sequence[tuple[float, np.ndarray]],
    *,
    dominance: float = 3.0,
    floor: float = 0.3,
    radius: int = 0,
) -> float | None:
    """Time of the first frame after the one dominant jump in ``frames``, or None.

    A jump is dominant when it is at least ``floor`` (in units of the standardised thumbnail)
    and ``dominance`` times every other jump in the window — or, with ``radius`` > 0, every
    other jump within ``radius`` frames of it (so a long window may hold motion elsewhere; the
    largest such jump wins). One cut, not motion or a gradual transition, which spread their
    change over many small steps.
    """
    if len(frames) < 3:
        return None
    jumps = frame_jumps([thumb for _t, thumb in frames])
    for k in np.argsort(jumps)[::-1]:
        if jumps[k] < floor:
            return None
        lo, hi = (0, len(jumps)) if radius <= 0 else (max(0, k - radius), k + radius + 1)
        rest = np.delete(jumps[lo:hi], k - lo)
        if jumps[k] >= dominance * float(rest.max(initial=0.0)):
            return float(frames[k + 1][0])
        if radius <= 0:
            return None
    return None
