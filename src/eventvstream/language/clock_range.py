"""Ranges written as clock times — "between 10:30 and 10:45", "from 9am to 11", "between 11 pm
and 1 am" — told apart from ranges of stream time, and read as a span of the day.

Why a rule: "between 1:30 and 2:00" is 90-120 s into a video, and half past one on a camera's
clock; only the writing can tell which the asker meant, so the parse records the ends *as
written* (``Intent.between``) and the answerer reads them on the wall clock of a live or pulled
stream, whose events carry it (:mod:`eventvstream.language.windows`). The rule:

* an end with am/pm or "o'clock", or "noon"/"midday"/"midnight", makes a clock range ("from
  9am to 11", "between 9 and 10 o'clock", "from 11 to noon"); such a range has no stream
  reading at all;
* otherwise both ends must be hours:minutes[:seconds] (whole numbers, hours under 24, minutes
  and seconds under 60), not both written the way a player shows a time under an hour ("0:30"):
  "10:30 to 10:45" and "00:10 to 00:20" are clock ranges, while "0:30 to 0:45", "0:05.5 to
  0:09", "30 to 45 seconds" and bare numbers ("from 10 to 20") are stream times, everywhere;
* a clock range of hours:minutes keeps its stream reading too (630-645 s), which is what a file
  (no wall clock) gets, as before.

How the day span is read: hours without am/pm are the 24-hour clock, except that an end without
one borrows the other end's am/pm reading that makes the span shortest ("from 9 to 11 am" is
9:00-11:00, "between 11 and 1 pm" 11:00-13:00). An end before its start is a span across
midnight when that span is at most 12 hours ("between 23:50 and 00:10", "from 10pm to 2am"),
else the two were written the other way round ("between 10:45 and 10:30" is 10:30-10:45).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY = 86400.0
#: An end written with am/pm or o'clock, or as a word: the pattern the question parse looks for.
MARKED = r"(?:\d{1,2}(?::\d{2}){0,2}\s*(?:[ap]\.?m\b\.?|o['’]?clock\b)|(?:noon|midday|midnight)\b)"
_WORDS = {"noon": "12 pm", "midday": "12 pm", "midnight": "12 am"}
_END = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*(?:([ap])\.?m\.?|(o['’]?clock))?", re.I)


@dataclass(frozen=True)
class _End:
    hours: int
    minutes: int
    seconds: int
    meridiem: str | None  # "a" / "p"
    oclock: bool
    colon: bool  # written hours:minutes
    player: bool  # written "0:mm", as a player shows a time under an hour
    precise: bool  # written with seconds

    def options(self, other: str | None) -> list[float]:
        """This end's readings in seconds after midnight (two when it borrows am or pm)."""
        rest = self.minutes * 60 + self.seconds
        if self.meridiem:
            return [(self.hours % 12 + (12 if self.meridiem == "p" else 0)) * 3600.0 + rest]
        if other and 1 <= self.hours <= 12:
            return [(self.hours % 12) * 3600.0 + rest, (self.hours % 12 + 12) * 3600.0 + rest]
        return [self.hours * 3600.0 + rest]


def _read(text: str) -> _End | None:
    written = text.strip()
    written = _WORDS.get(written.lower(), written)  # "noon" is 12 pm
    match = _END.fullmatch(written)
    if not match:
        return None
    hours, minutes, seconds, meridiem, oclock = match.groups()
    h, m, s = int(hours), int(minutes or 0), int(seconds or 0)
    if m >= 60 or s >= 60 or h >= (13 if meridiem else 24) or (meridiem and h == 0):
        return None
    return _End(
        h,
        m,
        s,
        meridiem.lower() if meridiem else None,
        bool(oclock),
        minutes is not None,
        written.startswith("0:"),
        seconds is not None,
    )


def marked(text: str) -> bool:
    """Whether an end is written with am/pm or o'clock (it then has no stream reading)."""
    end = _read(text)
    return end is not None and (end.meridiem is not None or end.oclock)


def is_clock_range(first: str, second: str) -> bool:
    """Whether a range written ``first`` to ``second`` names clock times (the module's rule)."""
    a, b = _read(first), _read(second)
    if a is None or b is None:
        return False
    if a.meridiem or b.meridiem or a.oclock or b.oclock:
        return True
    return a.colon and b.colon and not (a.player and b.player)


@dataclass(frozen=True)
class DaySpan:
    """A clock range read on the day: ``start`` and ``end`` in seconds after midnight (``end``
    below ``start``: the next day's), lasting ``precision`` per end (a minute for "10:30")."""

    start: float
    end: float
    precision: float

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    @property
    def length(self) -> float:
        return (self.end - self.start) % DAY


def day_span(first: str, second: str) -> DaySpan:
    """The span of the day a clock range names (ValueError when it is none: check with
    :func:`is_clock_range`)."""
    a, b = _read(first), _read(second)
    if a is None or b is None or not is_clock_range(first, second):
        raise ValueError(f"not a clock range: {first!r} to {second!r}")
    pairs = [(s0, s1) for s0 in a.options(b.meridiem) for s1 in b.options(a.meridiem)]
    start, end = min(pairs, key=lambda p: (p[1] - p[0]) % DAY)  # the shortest reading
    precision = 1.0 if a.precise or b.precise else 60.0
    if end == start:  # "between 10:30 and 10:30": that minute
        end = (start + precision) % DAY
    elif end < start and (end - start) % DAY > DAY / 2:  # written the other way round
        start, end = end, start
    return DaySpan(start, end, precision)
