"""What the detector keeps per frame and per open event, and how an open event is closed.

Split out of the detector so that file holds only the decision logic (when does a boundary
fire, is it confirmed); this one holds the records it decides over and the assembly of a closed
:class:`~eventvstream.events.types.Event` from them (pooled embedding, keyframes). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eventvstream.config import EventSettings
from eventvstream.events.pooling import ImageReservoir, choose_keyframes, pool_embedding
from eventvstream.events.types import Boundary, CueScores, Event, Keyframe


@dataclass
class FrameRecord:
    """One sampled frame as the detector remembers it."""

    t: float
    index: int
    feature: np.ndarray
    blank: bool
    colours: np.ndarray | None = None  # colour histogram (see cues.colour_histogram)
    change: float = 0.0  # 1 - cos to the previous informative frame
    prev_t: float = 0.0  # time of that previous informative frame
    transient: bool = False  # fired, then the next frame showed the change did not last

    @property
    def informative(self) -> bool:
        """Counts for the event's meaning: not black, not a transient that did not last."""
        return not (self.blank or self.transient)


@dataclass
class OpenEvent:
    opened_by: Boundary
    reservoir: ImageReservoir
    frames: list[FrameRecord] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.opened_by.t


@dataclass
class FrameTrace:
    """What the detector saw at one frame: the raw material of a cue/threshold plot.

    ``fired`` is set once a boundary at this frame is confirmed; ``transient`` marks a frame
    that crossed the threshold but whose change did not last (a flash, a brief occlusion).
    """

    t: float
    blank: bool
    scores: CueScores | None
    threshold: float | None
    fired: bool = False
    transient: bool = False


@dataclass
class PendingBoundary:
    """A frame that crossed the threshold, waiting for the next frames to confirm it."""

    frame: FrameRecord
    thumb: np.ndarray
    boundary: Boundary
    trace: FrameTrace | None
    old_mean: np.ndarray  # the event's mean before the candidate: what "no change" looks like
    old_colours: np.ndarray
    after: list[FrameRecord] = field(default_factory=list)  # the frames since


def close_event(
    open_event: OpenEvent, closed_by: Boundary, index: int, settings: EventSettings
) -> Event:
    """The finished event: pooled embedding over its informative frames, and keyframes."""
    frames = open_event.frames
    informative = [f for f in frames if f.informative] or frames
    features = np.stack([f.feature for f in informative])
    times = np.array([f.t for f in informative], dtype=np.float64)
    embedding = pool_embedding(features, times, settings.pooling)
    return Event(
        index=index,
        start=open_event.start,
        end=closed_by.t,
        frame_count=len(frames),
        embedding=embedding,
        keyframes=_keyframes(open_event, embedding, settings.keyframes),
        opened_by=open_event.opened_by,
        closed_by=closed_by,
    )


def _keyframes(open_event: OpenEvent, embedding: np.ndarray, k: int) -> list[Keyframe]:
    positions = [
        p for p in open_event.reservoir.positions() if open_event.frames[p].informative
    ] or open_event.reservoir.positions()
    if not positions:
        return []
    features = np.stack([open_event.frames[p].feature for p in positions])
    result = []
    for pick in choose_keyframes(features, embedding, k):
        frame = open_event.frames[positions[pick]]
        image = open_event.reservoir.image_at(positions[pick])
        result.append(Keyframe(frame.t, frame.index, image))
    return result
