"""Where a confirmed boundary goes on the timeline.

The frame that crosses the threshold is rarely where the change is: a dissolve crosses it
half-way through, a fade after the black, and a hard cut is only known to lie between two
samples (0.5 s apart at 2 fps). Two steps, both pure:

1. :func:`centre_of_change`: the change-weighted centre of the look-back window's strongest
   frame-to-frame changes, so a dissolve's boundary lands mid-dissolve and a fade's in the dark;
2. :func:`exact_cut`: when the caller can hand over every source frame around it
   (:data:`~eventvstream.events.refine.FrameWindow`), a hard cut moves onto its exact frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventvstream.events.refine import FrameWindow, locate_cut
from eventvstream.events.state import FrameRecord


def centre_of_change(
    frames: Sequence[FrameRecord], frame: FrameRecord, event_start: float, lookback_s: float
) -> float:
    """Σ w_j·mid_j / Σ w_j over the frames (of the open event, within ``lookback_s`` of
    ``frame``, plus ``frame`` itself) whose change is at least half the largest; mid_j is the
    midpoint between the frame and the informative frame before it."""
    horizon = frame.t - lookback_s
    candidates = [f for f in frames if f.informative and f.t >= horizon and f.t > event_start] + [
        frame
    ]
    peak = max(f.change for f in candidates)
    if peak <= 0:
        return frame.t
    strong = [f for f in candidates if f.change >= 0.5 * peak]
    weights = np.array([f.change for f in strong])
    mids = np.array([(f.t + f.prev_t) / 2 for f in strong])
    return float((weights * mids).sum() / weights.sum())


def exact_cut(
    window: FrameWindow,
    *,
    centre: float,
    fired: float,
    event_start: float,
    recent: Sequence[tuple[float, np.ndarray]],
    dominance: float,
    floor: float = 0.3,
    lookback_s: float = 0.0,
    radius: int = 0,
) -> float | None:
    """The first frame of the new shot, if the full-rate frames around the boundary show one
    dominant jump (a hard cut); None otherwise (the boundary stays at ``centre``).

    ``recent`` are the last sampled (t, thumbnail) pairs. A hard cut lies between the sample
    before the one that ``fired`` and that one; the centre of change may sit earlier (a busy
    stretch before the cut), and with ``lookback_s`` the search reaches that far before the
    fired sample too (a cut the cues noticed one sample late). The sample times come from
    ``recent``, not from the current frame step, which may differ by a source frame.

    When the decoder's window starts late (it began at a keyframe inside the span: encoders
    put one on a cut, so the first frame is then often the new shot's), the last sample before
    it stands in for the frames it skipped — otherwise the cut's jump would be invisible.
    """
    samples = [t for t, _ in recent if t < fired - 1e-6]
    prev = samples[-1] if samples else fired
    lo = max(event_start, min(centre, prev, fired - lookback_s) - 0.05)
    frames = list(window(lo, max(centre, fired) + 0.05))
    if len(frames) >= 2:
        dt = frames[1][0] - frames[0][0]
        if frames[0][0] - lo > 1.5 * dt:
            before = [item for item in recent if item[0] < frames[0][0] - 0.5 * dt]
            if before:
                frames.insert(0, before[-1])
    cut = locate_cut(frames, dominance=dominance, floor=floor, radius=radius)
    if cut is None or cut <= event_start:
        return None
    return cut
