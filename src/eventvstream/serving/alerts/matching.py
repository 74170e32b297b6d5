"""Whether a watch fires on an event: pure decisions, no I/O, no models.

A watch is a plain-language condition. Most are *semantic* ("a bird at the feeder"): the
similarity of the watch text to the event's description (both embedded by the same sentence
embedder, unit vectors, so a dot product) must reach the watch's threshold. A few phrasings are
recognised as *non-semantic* conditions that no embedding can judge well: "any event longer than
5 minutes" (duration) and "it gets dark" / "it gets light" (keyframe brightness crossing a level).

Two brakes keep a watch from flooding its receiver, and they measure different clocks on purpose:

* **cooldown** (stream time): after firing on an event, the watch stays quiet for events starting
  within ``cooldown_s`` of the fired one's end *on the same stream*, so one long scene split into
  many events fires once — whether it arrives live or from a file ingested at 30x real time;
* **rate limit** (wall clock): at most ``max_per_hour`` alerts per watch in any hour, which is
  what protects a webhook receiver from a fast upload.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ConditionKind = Literal["semantic", "duration", "dark", "light"]
HOUR_S = 3600.0
DARK_LEVEL = 0.25  # mean keyframe luma (0..1) under which a scene counts as dark
LIGHT_LEVEL = 0.35  # and over which it counts as light again (a gap, so flicker does not re-fire)

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_UNITS |= {"h": 3600.0, "hr": 3600.0, "hour": 3600.0}
_DURATION = re.compile(
    r"\b(?:longer|more)\s+than\s+(\d+(?:\.\d+)?)\s*"
    r"(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?)\b",
    re.IGNORECASE,
)
_DARK = re.compile(r"\b(?:gets?|getting|goes|going|turns?|turning|becomes?|is)\s+dark\b", re.I)
_LIGHT = re.compile(
    r"\b(?:gets?|getting|goes|going|turns?|turning|becomes?|is)\s+(?:light|bright)\b", re.I
)


@dataclass(frozen=True)
class Condition:
    kind: ConditionKind
    min_duration_s: float | None = None

    def describe(self) -> str:
        if self.kind == "duration":
            return f"an event longer than {self.min_duration_s:g} s"
        if self.kind in ("dark", "light"):
            return f"the scene gets {self.kind}"
        return "similar description"


def parse_condition(text: str, min_duration_s: float | None = None) -> Condition:
    """The condition a watch's text states. An explicit ``min_duration_s`` wins."""
    if min_duration_s is not None:
        return Condition("duration", float(min_duration_s))
    found = _DURATION.search(text)
    if found:
        unit = found.group(2).lower().rstrip("s") or "s"
        return Condition("duration", float(found.group(1)) * _UNITS[unit])
    if _DARK.search(text) or text.strip().lower() == "dark":
        return Condition("dark")
    if _LIGHT.search(text) or text.strip().lower() in ("light", "bright"):
        return Condition("light")
    return Condition("semantic")


@dataclass(frozen=True)
class WatchRule:
    """What matching needs of a watch (the stored watch has more: deliveries, names)."""

    id: str
    owner: str
    stream: str | None  # None: every stream of the owner
    condition: Condition
    threshold: float
    cooldown_s: float
    max_per_hour: int
    verify: bool = False
    enabled: bool = True
    created: float = 0.0
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class EventView:
    """What matching needs of an event (a stored row, seen at one moment)."""

    id: int
    owner: str
    stream: str
    start: float
    end: float
    updated: float  # wall time of its last change
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    luma: float | None = None  # mean keyframe brightness, 0..1, when known
    previous_luma: float | None = None  # of the stream's event before it


@dataclass
class WatchHistory:
    """A watch's recent alerts: wall times (rate limit) and, per stream, the span of the last
    event it fired on (cooldown). Rebuilt from the alerts table at start."""

    fired_at: deque[float] = field(default_factory=deque)
    last_span: dict[str, tuple[float, float]] = field(default_factory=dict)

    def record(self, stream: str, start: float, end: float, now: float) -> None:
        self.fired_at.append(now)
        self.last_span[stream] = (start, end)

    def recent(self, now: float) -> int:
        while self.fired_at and now - self.fired_at[0] >= HOUR_S:
            self.fired_at.popleft()
        return len(self.fired_at)


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str  # matched, below_threshold, cooldown, rate_limited, no_description, ...
    score: float | None = None
    threshold: float | None = None
    needs_verification: bool = False

    def why(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "score": None if self.score is None else round(self.score, 4),
            "threshold": self.threshold,
        }


def applies(rule: WatchRule, event: EventView) -> bool:
    """The watch covers this event: same owner, its stream (or all), enabled, and the event
    changed after the watch was made (a new watch does not fire on old history)."""
    return (
        rule.enabled
        and rule.owner == event.owner
        and (rule.stream is None or rule.stream == event.stream)
        and event.updated >= rule.created
    )


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None or len(a) != len(b):
        return None
    return float(np.dot(a, b))


def _condition(rule: WatchRule, event: EventView) -> Decision:
    condition = rule.condition
    if condition.kind == "duration":
        length = event.end - event.start
        limit = float(condition.min_duration_s or 0.0)
        return Decision(length > limit, "matched" if length > limit else "too_short", length, limit)
    if condition.kind in ("dark", "light"):
        if event.luma is None:
            return Decision(False, "no_brightness")
        if condition.kind == "dark":
            now_in = event.luma < DARK_LEVEL
            was_in = event.previous_luma is not None and event.previous_luma < LIGHT_LEVEL
            level = DARK_LEVEL
        else:
            now_in = event.luma > LIGHT_LEVEL
            was_in = event.previous_luma is not None and event.previous_luma > DARK_LEVEL
            level = LIGHT_LEVEL
        if not now_in:
            return Decision(False, "not_" + condition.kind, event.luma, level)
        if was_in:  # already dark before: "gets dark" is the change, not the state
            return Decision(False, "no_change", event.luma, level)
        return Decision(True, "matched", event.luma, level)
    score = similarity(rule.vector, event.vector)
    if score is None:
        return Decision(False, "no_description", None, rule.threshold)
    if score < rule.threshold:
        return Decision(False, "below_threshold", score, rule.threshold)
    return Decision(True, "matched", score, rule.threshold, needs_verification=rule.verify)


def decide(rule: WatchRule, event: EventView, history: WatchHistory, now: float) -> Decision:
    """Fire, or why not. Conditions first (their score is reported either way), then the
    cooldown on the stream's timeline, then the hourly rate limit."""
    if not applies(rule, event):
        return Decision(False, "not_applicable")
    matched = _condition(rule, event)
    if not matched.fire:
        return matched
    span = history.last_span.get(event.stream)
    if span is not None and rule.cooldown_s > 0:
        last_start, last_end = span
        overlaps = event.start < last_end and event.end > last_start
        if overlaps or abs(event.start - last_end) < rule.cooldown_s:
            return Decision(False, "cooldown", matched.score, matched.threshold)
    if history.recent(now) >= rule.max_per_hour:
        return Decision(False, "rate_limited", matched.score, matched.threshold)
    return matched
