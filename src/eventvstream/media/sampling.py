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


class StreamSampler:
    """:func:`sample_indices` for frames that arrive one at a time (times from the first frame).

    Used by readers that decode in one pass and do not know the last frame in advance: offer each
    frame to :meth:`take` in order, and the final frame (if :meth:`take` refused it) to
    :meth:`take_last`. The result equals :func:`sample_indices` on the same times, except that a
    final frame within half a millisecond before a tick past the end is taken by the tick rather
    than by the tail rule (same frame either way).
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = fps
        self.taken = 0
        self._next_tick = 0  # tick number k: the clock reads k / fps
        self._last_taken = -np.inf

    def take(self, t: float) -> bool:
        """Whether the frame at ``t`` seconds is sampled (the first at or after the next tick)."""
        if t < self._next_tick / self.fps - 5e-4:
            return False
        self._next_tick = int(np.floor((t + 5e-4) * self.fps)) + 1
        self._last_taken = t
        self.taken += 1
        return True

    def take_last(self, t: float) -> bool:
        """Whether the stream's final frame at ``t`` is also sampled: more than half a period
        after the last sampled one, so a file's final moments are seen."""
        if t - self._last_taken > 0.5 / self.fps:
            self._last_taken = t
            self.taken += 1
            return True
        return False
