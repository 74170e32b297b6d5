"""Every frame of a short span of a video file, as tiny grey thumbnails.

The segmenter samples a few frames per second; to put a hard cut on its exact frame, the event
detector asks for every frame around a boundary it has just confirmed (``events.refine``). This
opens the file with PyAV, seeks to the keyframe before the span and decodes forward, scaling each
frame to ``grid`` in FFmpeg (area averaging) — a handful of frames per boundary, not a second
decoding pass. Encoders put a keyframe on a scene cut, so the seek usually lands right there.

Times are seconds from the file's first frame, the decoder's convention (``start_offset`` is the
first frame's presentation time, from :class:`~eventvstream.media.VideoInfo`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class FrameWindowReader:
    """Reads spans of one file; keeps the container open between calls (one per video)."""

    def __init__(self, path: str | Path, start_offset: float, grid: tuple[int, int]) -> None:
        import av

        self._container = av.open(str(path))
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.start_offset = start_offset
        self.grid = grid

    def __call__(self, start: float, end: float) -> list[tuple[float, np.ndarray]]:
        """(t, grey float32 thumbnail in [0, 1]) for every frame with start <= t <= end; empty
        if the span cannot be decoded (refinement is an improvement, never a failure)."""
        stream, base = self._stream, self._stream.time_base
        try:
            self._container.seek(
                int((max(0.0, start) + self.start_offset) / base), stream=stream, backward=True
            )
            frames = []
            for frame in self._container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * base) - self.start_offset
                if t > end + 1e-6:
                    break
                if t >= start - 1e-6:
                    small = frame.reformat(
                        width=self.grid[0], height=self.grid[1], format="gray", interpolation="AREA"
                    )
                    frames.append((t, small.to_ndarray().astype(np.float32) / 255.0))
            return frames
        except Exception as exc:  # a damaged stretch: keep the sampled-rate boundary
            log.debug("frame window %.2f-%.2f s of %s failed: %s", start, end, self.grid, exc)
            return []

    def close(self) -> None:
        self._container.close()
