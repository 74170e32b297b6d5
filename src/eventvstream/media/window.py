"""Every frame of a short span of a video file, as tiny grey thumbnails.

The segmenter samples a few frames per second; to put a hard cut on its exact frame, the event
detector asks for every frame around a boundary it has just confirmed (``events.refine``). This
opens the file with PyAV, seeks to the keyframe before the span's end and decodes forward,
scaling each frame to ``grid`` in FFmpeg (area averaging) — a handful of frames per boundary, not
a second decoding pass. Encoders put a keyframe on a scene cut, so the seek usually lands right
on it; a span whose keyframe is far before it is skipped rather than decoded at length.

Times are seconds from the file's first frame, the decoder's convention.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from eventvstream.media.frames import grey_thumbnailer

log = logging.getLogger(__name__)


class FrameWindowReader:
    """Reads spans of one file; keeps the container open between calls (one per video)."""

    def __init__(
        self,
        path: str | Path,
        grid: tuple[int, int],
        max_lead_s: float = 1.0,
    ) -> None:
        import av

        self._container = av.open(str(path))
        self._stream = self._container.streams.video[0]
        # One thread: a span is a few dozen frames after a seek, and frame threads would decode
        # ahead past its end on every call. Measured on the 720p benchmark clip: 30% less CPU
        # for the same wall time, CPU the sampling decoder running beside it needs.
        self._stream.codec_context.thread_count = 1
        self.start_offset = self._first_pts()
        self.grid = grid
        self._thumbnail = grey_thumbnailer(grid)
        self.max_lead_s = max_lead_s

    def __call__(self, start: float, end: float) -> list[tuple[float, np.ndarray]]:
        """(t, grey float32 thumbnail in [0, 1]) for the frames with start <= t <= end.

        Seeks to the keyframe at or before ``end``. If that keyframe lies inside the span (an
        encoder's keyframe on a cut), the result starts there: the caller supplies the frame
        before. If it lies more than ``max_lead_s`` before ``start``, decoding up to the span
        would cost more than the refinement is worth, and the result is empty — as it is when
        the span cannot be decoded (refinement is an improvement, never a failure).
        """
        frames = self._read(start, end, end)
        if not frames:  # some containers (MPEG-PS) seek past the target: aim earlier, once
            frames = self._read(start, end, start - self.max_lead_s / 2)
        return frames

    def _read(self, start: float, end: float, target: float) -> list[tuple[float, np.ndarray]]:
        stream, base = self._stream, self._stream.time_base
        try:
            self._container.seek(
                int((max(0.0, target) + self.start_offset) / base), stream=stream, backward=True
            )
            frames: list[tuple[float, np.ndarray]] = []
            first = True
            for frame in self._container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * base) - self.start_offset
                if first and t < start - self.max_lead_s:
                    return []
                first = False
                if t > end + 1e-6:
                    break
                if t >= start - 1e-6:
                    frames.append((t, self._thumbnail(frame)))
            return frames
        except Exception as exc:  # a damaged stretch: keep the sampled-rate boundary
            log.debug("frame window %.2f-%.2f s failed: %s", start, end, exc)
            return []

    def _first_pts(self) -> float:
        """The first frame's presentation time: times here count from it, like the decoder's.
        (Measured here rather than taken from the sampling decoder, which reports 0 for an
        MPEG-PS file whose first frame is at 0.54 s.)"""
        stream = self._stream
        if stream.start_time is not None:
            return float(stream.start_time * stream.time_base)
        for frame in self._container.decode(stream):
            if frame.pts is not None:
                return float(frame.pts * stream.time_base)
        return 0.0

    def close(self) -> None:
        self._container.close()
