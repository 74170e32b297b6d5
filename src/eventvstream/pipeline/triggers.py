"""Trigger policies: when the decoder runs (``language.trigger``).

* ``event`` (default): at each event boundary found by the motion + semantic + predictive cues.
* ``interval``: every ``language.interval_s`` seconds, whatever happens (the fixed-chunk
  baseline, e.g. NVIDIA VSS's 10-s chunks).
* ``frame``: at every sampled frame (what per-frame streaming video-LLMs decode at).

A policy is just the unit-maker the segmenter feeds frames to; each unit it closes is stored in
memory and captioned once, so decoder calls = units, and the policies compare side by side.
"""

from __future__ import annotations

from eventvstream.config import Settings
from eventvstream.events import EventDetector
from eventvstream.events.fixed import FixedWindowChunker

UnitMaker = EventDetector | FixedWindowChunker


def make_unit_maker(settings: Settings, *, trace: bool = False) -> UnitMaker:
    trigger = settings.language.trigger
    if trigger == "event":
        return EventDetector(settings.events, seed=settings.encoder.seed, trace=trace)
    interval = settings.language.interval_s if trigger == "interval" else 0.0
    return FixedWindowChunker(
        interval, keyframes=settings.events.keyframes, pooling=settings.events.pooling
    )
