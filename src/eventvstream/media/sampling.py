"""Choosing which decoded frames to keep for a target sampling rate (pure)."""

from __future__ import annotations

import numpy as np


def sample_indices(pts: np.ndarray, fps: float) -> np.ndarray:
    """Indices of the frames nearest at-or-after each tick of a ``fps`` clock.

    ``pts`` are the frames' presentation times in seconds (sorted, as decoders return them).
    Ticks start at the first frame. Each tick takes the first frame whose time is at or after it
    (within half a millisecond), so sampled times are real frame times, never interpolated, and a
    source slower than ``fps`` simply yields every frame once. The last frame is also taken when
    it lies more than half a period after the last tick: otherwise whatever happens in a file's
    final moments (a last cut) would never be seen.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    pts = np.asarray(pts, dtype=np.float64)
    if pts.size == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = float(pts[0]), float(pts[-1])
    ticks = first + np.arange(int(np.floor((last - first) * fps + 1e-9)) + 1) / fps
    idx = np.searchsorted(pts, ticks - 5e-4, side="left")
    idx = idx[idx < pts.size]
    if idx.size and last - float(pts[idx[-1]]) > 0.5 / fps:
        idx = np.append(idx, pts.size - 1)
    return np.unique(idx).astype(np.int64)
