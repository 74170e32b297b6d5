"""What kind of question is this? Pure text rules, no model.

Why rules and not the LLM: the packaged 135M decoder cannot reliably turn "what happened between
1:30 and 2:00" into a time filter, and getting it wrong means citing the wrong events. Four
shapes cover what people ask a video memory:

* ``now``    — "what is happening now / right now / at the moment / currently"
* ``range``  — "what happened between 1:30 and 2:00", "from 60s to 90s" (also "in the first
  2 minutes", "in the last 30 seconds" of the stream)
* ``last``   — "when did X last happen", "the last time X", "most recently"
* ``search`` — anything else: find the events most related to the question
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["now", "range", "last", "search"]

_NUMBER = r"\d+(?:\.\d+)?"
_CLOCK = r"(?:\d+:)?\d+:\d+(?:\.\d+)?"
_UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])"
_TIME = rf"(?:{_CLOCK}|{_NUMBER}\s*{_UNIT}(?:\s*{_NUMBER}\s*{_UNIT})*|{_NUMBER})"
_RANGE = re.compile(rf"\b(?:between|from)\s+({_TIME})\s+(?:and|to|-|until)\s+({_TIME})", re.I)
_FIRST = re.compile(rf"\bin the first\s+({_TIME})", re.I)
_RECENT = re.compile(
    rf"\b(?:in|during|over|for) the (?:last|past|previous)\s+({_TIME}|hour|minute|second)\b",
    re.I,
)
_NOW = re.compile(
    r"\b(right now|just now|now|at the moment|currently|at present|going on|latest)\b", re.I
)
_LAST = re.compile(r"\b(last|most recent(?:ly)?|latest time)\b", re.I)
_FILLER = re.compile(
    r"\b(when|did|does|do|was|were|is|the|a|an|last|time|most|recently|recent|happen(?:ed|s)?|"
    r"see|seen|appear(?:ed|s)?|there|what|we|you|i|going|on|happening|show(?:n|s)?)\b|[?!.,]",
    re.I,
)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


@dataclass(frozen=True)
class Intent:
    kind: Kind
    topic: str  # what to look for, with the time phrases and question filler removed
    t0: float | None = None
    t1: float | None = None
    #: "in the last 30 seconds": a range of this length ending at the stream's latest event,
    #: which only the memory knows; the answerer turns it into ``t0``/``t1``.
    recent_s: float | None = None


def parse_time(text: str) -> float:
    """'1:30' -> 90, '1:02:03' -> 3723, '90s' -> 90, '2 minutes' -> 120, '1m30s' -> 90."""
    text = text.strip().lower()
    if ":" in text:
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds
    pairs = re.findall(rf"({_NUMBER})\s*([a-z]+)?", text)
    total = 0.0
    for number, unit in pairs:
        total += float(number) * _UNIT_SECONDS.get((unit or "s")[0], 1.0)
    return total


def parse(question: str) -> Intent:
    text = question.strip()
    match = _RANGE.search(text)
    if match:
        t0, t1 = sorted(_range_times(match.group(1), match.group(2)))
        return Intent("range", _topic(text.replace(match.group(0), " ")), t0, t1)
    match = _FIRST.search(text)
    if match:
        return Intent(
            "range", _topic(text.replace(match.group(0), " ")), 0.0, parse_time(match.group(1))
        )
    match = _RECENT.search(text)
    if match:
        topic = _topic(text.replace(match.group(0), " "))
        length = match.group(1)  # "the last minute" is one minute
        return Intent(
            "range", topic, recent_s=parse_time(length if length[0].isdigit() else "1 " + length)
        )
    if _LAST.search(text) and not _NOW.search(text):
        topic = _topic(text)
        # "what was the last thing that happened" names nothing to look for: that is "now"
        return Intent("last", topic) if _has_subject(topic) else Intent("now", "")
    if _NOW.search(text):
        return Intent("now", _topic(_NOW.sub(" ", text)))
    return Intent("search", _topic(text))


def _range_times(first: str, second: str) -> tuple[float, float]:
    """Both ends of a range. A bare first number shares the unit written after the second
    ("between 1 and 2 minutes" is 60-120 s, not 1-120 s) unless that puts it past the second
    ("from 30 to 1 minute" stays 30-60 s)."""
    end = parse_time(second)
    unit = re.fullmatch(rf"{_NUMBER}\s*({_UNIT})", second.strip(), re.I)
    if re.fullmatch(_NUMBER, first.strip()) and unit:
        shared = parse_time(f"{first.strip()} {unit.group(1)}")
        if shared <= end:
            return shared, end
    return parse_time(first), end


_VAGUE = {"thing", "things", "something", "anything", "everything", "that", "this", "which"}
_VAGUE |= {"event", "events", "it", "occurred"}


def _has_subject(topic: str) -> bool:
    return any(word.lower() not in _VAGUE for word in topic.split())


_CONTRACTION = re.compile(r"['’](?:s|re|ve|d|ll|m)\b", re.I)


def _topic(text: str) -> str:
    """The words left to search for; none when only filler or vague words remain ("what's
    happening", "anything between 1:00 and 2:00" name nothing to look for)."""
    words = _FILLER.sub(" ", _CONTRACTION.sub(" ", text)).split()
    return " ".join(words) if _has_subject(" ".join(words)) else ""
