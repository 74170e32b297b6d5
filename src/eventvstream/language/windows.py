"""A question's window ("in the last 5 minutes", "10 minutes ago", "since 10:30", "at 10:30",
"between 10:30 and 10:45") turned into stream times, so retrieval works on one time axis.

Why its own module: the mapping differs by stream kind. A live or pulled stream's events carry
wall-clock times, so "since 10:30" is read on the clock in ``language.timezone`` and mapped to
stream time through memory (across outages and restarts); a file has no clock, so the same words
count back from its last event, in stream seconds, and a range of clock times keeps its reading
as stream times ("between 10:30 and 10:45" is 630-645 s) — or, written with am/pm, has none,
and the answer says so (:func:`off_clock`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import NamedTuple

from eventvstream.language.clock_range import day_span
from eventvstream.language.intent import Intent, clock_precision, since_seconds
from eventvstream.language.wallclock import Clock
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.retrieval import Scope
from eventvstream.memory.rows import EventRow

#: "10 minutes ago" looks this far either side of that moment (at least 15 s).
AGO_WINDOW = 0.1
#: A window no event overlaps (stream times are never negative): a wall-clock window that fell
#: wholly in an outage, or before the stream's first event.
NOWHERE = (-2.0, -1.0)


class Window(NamedTuple):
    """A question's window resolved: ``intent`` with stream times ``t0``/``t1``, the question's
    times (allowed in a phrased answer: stream seconds, or a clock time as seconds after
    midnight), and whether it was read on the wall clock (a live stream)."""

    intent: Intent
    times: list[float]
    on_clock: bool


def resolve_window(
    bank: MemoryBank, clock: Clock, intent: Intent, scope: Scope, now: float
) -> Window:
    """Turn windows relative to now ("last 5 minutes", "10 minutes ago") and clock times
    ("since 10:30", "at 10:30", "between 10:30 and 10:45") into stream times, from the scope's
    latest event: on a live stream (its events carry wall-clock times) through the wall clock,
    across outages and restarts; on a file, back from its last event and as stream times."""
    times = [t for t in (intent.t0, intent.t1) if t is not None]
    if (intent.recent_s, intent.ago_s, intent.since, intent.at, intent.between) == (None,) * 5:
        return Window(intent, times, False)
    latest = bank.latest(stream=scope.stream, owner=scope.owner, limit=1)
    if latest and latest[0].wall_start is not None:
        return Window(*_wall_window(bank, clock, intent, latest[0], times, now), True)
    if intent.between is not None:  # a file: the range's stream reading, if any (off_clock)
        return Window(intent, times, False)
    end = latest[0].end if latest else 0.0
    if intent.recent_s is not None:
        times.append(intent.recent_s)
        return Window(replace(intent, t0=max(0.0, end - intent.recent_s), t1=end), times, False)
    if intent.ago_s is not None:
        times.append(intent.ago_s)
        moment = max(0.0, end - intent.ago_s)
        half = max(15.0, AGO_WINDOW * intent.ago_s)
        return Window(replace(intent, t0=max(0.0, moment - half), t1=moment + half), times, False)
    if intent.since is not None:
        since = since_seconds(intent.since, wall_clock=False)
        times.append(since)
        return Window(replace(intent, t0=since, t1=None), times, False)
    moment = since_seconds(intent.at or "0", wall_clock=False)
    times.append(moment)
    return Window(replace(intent, t0=moment, t1=moment + 1.0), times, False)


def off_clock(window: Window) -> str | None:
    """The answer when a question's clock range cannot be placed: written with am/pm or
    o'clock ("from 9am to 11"), so it has no stream reading, on a stream without a wall clock
    (a file, an upload). None when the window is fine."""
    intent = window.intent
    if intent.between is None or window.on_clock or intent.t0 is not None:
        return None
    first, second = intent.between
    return (
        f"I cannot place {first} to {second} on this stream: I have no events of it with "
        "wall-clock times (a file or an upload has only times into the video). Ask with those "
        'instead, for example "what happened between 1:30 and 2:00?".'
    )


def _wall_window(
    bank: MemoryBank,
    clock: Clock,
    intent: Intent,
    latest: EventRow,
    times: list[float],
    now: float,
) -> tuple[Intent, list[float]]:
    """A live stream's window on the wall clock (now, and today's "10:30" in the
    configured zone, ``language.timezone``) mapped to its stream times
    (``MemoryBank.stream_time_at``)."""

    def stream_time(wall: float, gap: str = "next") -> float:
        mapped = bank.stream_time_at(latest.stream, latest.owner, wall, gap=gap)
        return 0.0 if mapped is None else max(0.0, mapped)

    def span(start: float, end: float) -> dict[str, float]:
        """Stream times of the wall-clock span [start, end]; :data:`NOWHERE` when no event
        overlaps it (both ends fell on the same edge: an outage, before the first event)."""
        t0, t1 = stream_time(start), stream_time(end, "previous")
        return dict(zip(("t0", "t1"), (t0, t1) if t1 > t0 else NOWHERE, strict=True))

    if intent.recent_s is not None:
        times.append(intent.recent_s)
        return replace(intent, t0=stream_time(now - intent.recent_s), t1=None), times
    if intent.ago_s is not None:
        times.append(intent.ago_s)
        half = max(15.0, AGO_WINDOW * intent.ago_s)
        moment = now - intent.ago_s
        return replace(intent, **span(moment - half, moment + half)), times
    if intent.between is not None:
        range_ = day_span(*intent.between)
        times = [range_.start, range_.end]  # on the clock: not its stream reading (630 s)
        start = clock.latest(range_.start, now)
        day = clock.at(start).date() + timedelta(days=1 if range_.crosses_midnight else 0)
        end = clock.unix(day, range_.end)
        precision = range_.precision
        written = (_written(clock, start, now, precision), _written(clock, end, start, precision))
        return replace(intent, between=written, **span(start, end)), times
    written = intent.since or intent.at or "0"
    seconds = since_seconds(written, wall_clock=True)
    times.append(seconds)
    moment = clock.latest(seconds, now)
    if intent.since is not None:
        return replace(intent, t0=stream_time(moment), t1=None), times
    return replace(intent, **span(moment, moment + clock_precision(written))), times


def _written(clock: Clock, unix: float, before: float, precision: float) -> str:
    """How the answer says one end of a clock range as it was read: '10:30', '10:30:15',
    dated ('2026-12-01 23:50') when its day is not ``before``'s."""
    moment = clock.at(unix)
    text = moment.strftime("%H:%M" if precision >= 60 else "%H:%M:%S")
    return text if moment.date() == clock.at(before).date() else f"{moment:%Y-%m-%d} {text}"
