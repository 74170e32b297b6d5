"""Fixed-length windows in place of events: the baselines that event-triggered generation beats.

``interval`` cuts the stream every ``interval_s`` seconds whatever the content (what NVIDIA VSS
does with its 10-s chunks); ``frame`` makes every sampled frame its own unit (what a per-frame
streaming video-LLM decodes at). Same ``push``/``flush`` interface and the same :class:`Event`
output as :class:`EventDetector`, so the rest of the pipeline (memory, captions, reports) runs
unchanged and the policies can be compared side by side. Pure: no I/O, no model code.
"""

from __future__ import annotations

import numpy as np

from eventvstream.events.pooling import choose_keyframes, pool_embedding
from eventvstream.events.types import Boundary, Event, Keyframe


class FixedWindowChunker:
    def __init__(self, interval_s: float, *, keyframes: int = 3, pooling: str = "mean") -> None:
        """``interval_s`` = 0 makes one unit per sampled frame (the ``frame`` policy); a unit
        closes when the next frame arrives, so it spans one sampling step."""
        self.interval_s = max(1e-6, float(interval_s))
        self.keyframes = keyframes
        self.pooling = pooling
        self._frames: list[tuple[float, int, np.ndarray, np.ndarray | None]] = []
        self._opened = Boundary(0.0, "stream_start")
        self._next_index = 0

    def push(
        self, t: float, frame_index: int, feature: np.ndarray, image: np.ndarray | None
    ) -> list[Event]:
        closed: list[Event] = []
        if self._frames and t - self._frames[0][0] >= self.interval_s - 1e-9:
            closed.append(self._close(Boundary(t, "interval")))
        self._frames.append((t, frame_index, np.asarray(feature, np.float32), image))
        return closed

    def flush(self, end_time: float | None = None) -> list[Event]:
        if not self._frames:
            return []
        end = self._frames[-1][0] if end_time is None else max(end_time, self._frames[-1][0])
        return [self._close(Boundary(end, "end_of_stream"))]

    def _close(self, closed_by: Boundary) -> Event:
        frames, self._frames = self._frames, []
        times = np.array([f[0] for f in frames])
        features = np.stack([f[2] for f in frames])
        embedding = pool_embedding(
            features, times, "boundary" if self.pooling == "boundary" else "mean"
        )
        picks = choose_keyframes(features, embedding, self.keyframes)
        keyframes = [Keyframe(frames[i][0], frames[i][1], frames[i][3]) for i in picks]
        start = frames[0][0]
        end = closed_by.t if closed_by.t > start else start + 1e-3
        event = Event(
            self._next_index, start, end, len(frames), embedding, keyframes, self._opened, closed_by
        )
        self._opened = closed_by if closed_by.reason == "interval" else self._opened
        self._next_index += 1
        return event
