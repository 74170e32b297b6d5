"""Events: the three cues, fusion, adaptive threshold and event assembly.

Pure computation on arrays: no I/O, no model code. Feed it (time, feature, image) per frame.
"""

from eventvstream.events.detector import EventDetector, FrameTrace
from eventvstream.events.metrics import BoundaryScore, score_boundaries
from eventvstream.events.types import Boundary, CueScores, Event, Keyframe

__all__ = [
    "Boundary",
    "BoundaryScore",
    "CueScores",
    "Event",
    "EventDetector",
    "FrameTrace",
    "Keyframe",
    "score_boundaries",
]
