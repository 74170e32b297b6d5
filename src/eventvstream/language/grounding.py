"""Times in answers: how they are written, and a check that a decoder did not invent any.

Times, event ids and counts in an answer come from memory; the decoder only phrases. A small
model still writes times of its own ("between 0:03 and 0:10" for an event at 4.8-7.3 s), so
every time a decoder's answer states is checked against the evidence: it must fall inside (or
within rounding of) a cited event, or be a time the question itself gave. Anything else sends
the answer back to its template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from eventvstream.memory.store import EventRow

#: Rounding slack: "at 5 s" for an event starting at 4.8 s is fine.
TOLERANCE_S = 0.6
_CLOCK = re.compile(r"(?<![\d.:])(\d+(?::\d{1,2}){1,2}(?:\.\d+)?)(?![\d:])")
_UNIT = re.compile(
    r"(?<![\d.:])(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|min|m|seconds?|secs?|sec|s)"
    r"(?![a-z])",
    re.I,
)
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def clock(t: float) -> str:
    """A stream time as people read it: '4.8 s' below a minute, else 'm:ss' or 'h:mm:ss'."""
    if t < 60:
        return f"{t:.1f} s"
    seconds = round(t)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def span(start: float, end: float) -> str:
    return f"{clock(start)} to {clock(end)}"


def stated_times(text: str) -> list[float]:
    """Every time ``text`` states, in seconds ('1:30', '0:04.8', '4.8 s', '2 minutes')."""
    times: list[float] = []
    for match in _CLOCK.finditer(text):
        value = 0.0
        for part in match.group(1).split(":"):
            value = value * 60 + float(part)
        times.append(value)
    cleaned = _CLOCK.sub(" ", text)
    for match in _UNIT.finditer(cleaned):
        times.append(float(match.group(1)) * _SECONDS[match.group(2)[0].lower()])
    return times


def allowed(t: float, events: Sequence[EventRow], extra: Iterable[float] = ()) -> bool:
    """Whether time ``t`` belongs to one of ``events`` or is one of ``extra`` (the question's)."""
    for row in events:
        if row.start - TOLERANCE_S <= t <= row.end + TOLERANCE_S:
            return True
    return any(abs(t - x) <= TOLERANCE_S for x in extra)


def invented_times(
    text: str, events: Sequence[EventRow], extra: Iterable[float] = ()
) -> list[float]:
    """The times ``text`` states that belong to no event in ``events`` and to no ``extra``."""
    extra = list(extra)
    return [t for t in stated_times(text) if not allowed(t, events, extra)]


def stray_numbers(text: str, allowed: Iterable[int] = ()) -> list[str]:
    """Numbers in ``text`` that are neither a time, an ``[#id]`` nor one of ``allowed`` (a
    count): a small model's "The answer is: 2014-01-01" gives itself away here."""
    rest = re.sub(r"\[#?\d+(?:,\s*#?\d+)*\]|#\d+", " ", text)
    rest = _UNIT.sub(" ", _CLOCK.sub(" ", rest))
    keep = {str(n) for n in allowed}
    return [n for n in re.findall(r"\d+(?:\.\d+)?", rest) if n not in keep]
