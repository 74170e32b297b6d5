"""The data the event layer produces: boundaries (explainable) and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

#: Labels a keyframe keeps (the event's pooled labels keep the encoder's full top k): enough
#: for a reader and the alert rules, small enough that a million events stay cheap to store.
KEYFRAME_LABELS = 5

BoundaryReason = Literal["cue", "max_length", "stream_start", "end_of_stream", "interval"]


@dataclass(frozen=True)
class CueScores:
    """Raw and normalised cue values at one frame."""

    semantic: float
    motion: float
    predictive: float
    semantic_norm: float
    motion_norm: float
    predictive_norm: float
    fused: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 5) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Boundary:
    """Why and where an event started or ended. Every boundary explains itself: the cue scores
    at the frame that fired, and the threshold they crossed."""

    t: float
    reason: BoundaryReason
    threshold: float | None = None
    scores: CueScores | None = None
    fired_at: float | None = None  # frame time that crossed; ``t`` may be refined earlier

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "reason": self.reason,
            "threshold": None if self.threshold is None else round(self.threshold, 5),
            "scores": None if self.scores is None else self.scores.to_dict(),
            "fired_at": None if self.fired_at is None else round(self.fired_at, 3),
        }


@dataclass
class Keyframe:
    t: float
    frame_index: int
    image: np.ndarray | None = field(default=None, repr=False)
    labels: list[tuple[str, float]] = field(default_factory=list)
    #: How it looks (brightness, colour, camera motion since the previous keyframe); filled by
    #: the pipeline from the pixels, which this layer never inspects.
    look: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "t": round(self.t, 3),
            "frame_index": self.frame_index,
            "labels": [[name, round(p, 4)] for name, p in self.labels],
        }
        if self.look:
            data["look"] = self.look
        return data


@dataclass
class Event:
    """A semantically coherent stretch of video: [start, end) in seconds from the stream start."""

    index: int
    start: float
    end: float
    frame_count: int
    embedding: np.ndarray = field(repr=False)
    keyframes: list[Keyframe]
    opened_by: Boundary
    closed_by: Boundary
    #: Labels pooled over every frame of the event (set by the pipeline, which labels each
    #: frame); None falls back to the keyframes' labels.
    pooled_labels: list[tuple[str, float]] | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def labels(self) -> list[tuple[str, float]]:
        """Labels over all frames (else all keyframes), by mean probability (the event's 'what
        is in it')."""
        if self.pooled_labels is not None:
            return self.pooled_labels
        totals: dict[str, float] = {}
        for keyframe in self.keyframes:
            for name, p in keyframe.labels:
                totals[name] = totals.get(name, 0.0) + p / max(1, len(self.keyframes))
        return sorted(totals.items(), key=lambda item: -item[1])

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "frames": self.frame_count,
            "keyframes": [k.to_dict() for k in self.keyframes],
            "labels": [[n, round(p, 4)] for n, p in self.labels[:5]],
            "opened_by": self.opened_by.to_dict(),
            "closed_by": self.closed_by.to_dict(),
        }
        if with_embedding:
            data["embedding"] = [round(float(x), 6) for x in self.embedding]
        return data
