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
        t0, t1 = sorted((parse_time(match.group(1)), parse_time(match.group(2))))
        return Intent("range", _topic(text.replace(match.group(0), " ")), t0, t1)
    match = _FIRST.search(text)
    if match:
        return Intent(
            "range", _topic(text.replace(match.group(0), " ")), 0.0, parse_time(match.group(1))
        )
    if _LAST.search(text) and not _NOW.search(text):
        topic = _topic(text)
        # "what was the last thing that happened" names nothing to look for: that is "now"
        return Intent("last", topic) if _has_subject(topic) else Intent("now", "")
    if _NOW.search(text):
        return Intent("now", _topic(_NOW.sub(" ", text)))
    return Intent("search", _topic(text))


_VAGUE = {"thing", "things", "something", "anything", "that", "which", "event", "events", "it"}


def _has_subject(topic: str) -> bool:
    return any(word.lower() not in _VAGUE for word in topic.split())


def _topic(text: str) -> str:
    return " ".join(_FILLER.sub(" ", text).split())
