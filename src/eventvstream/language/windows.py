"""A question's window ("in the last 5 minutes", "10 minutes ago", "since 10:30", "at 10:30")
turned into stream times, so retrieval works on one time axis.

Why its own module: the mapping differs by stream kind. A live or pulled stream's events carry
wall-clock times, so "since 10:30" is read on the clock in ``language.timezone`` and mapped to
stream time through memory (across outages and restarts); a file has no clock, so the same words
count back from its last event, in stream seconds.
"""

from __future__ import annotations

from dataclasses import replace

from eventvstream.language.intent import Intent, clock_precision, since_seconds
from eventvstream.language.wallclock import Clock
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.retrieval import Scope
from eventvstream.memory.rows import EventRow

#: "10 minutes ago" looks this far either side of that moment (at least 15 s).
AGO_WINDOW = 0.1


def resolve_window(
    bank: MemoryBank, clock: Clock, intent: Intent, scope: Scope, now: float
) -> tuple[Intent, list[float], bool]:
    """Turn windows relative to now ("last 5 minutes", "10 minutes ago") and clock times
    ("since 10:30", "at 10:30") into stream times, from the scope's latest event: on a live
    stream (its events carry wall-clock times) through the wall clock, across outages and
    restarts; on a file, back from its last event and as stream times. Also the question's
    times (allowed in a phrased answer) and whether the window was read on the clock."""
    times = [t for t in (intent.t0, intent.t1) if t is not None]
    if (intent.recent_s, intent.ago_s, intent.since, intent.at) == (None,) * 4:
        return intent, times, False
    latest = bank.latest(stream=scope.stream, owner=scope.owner, limit=1)
    if latest and latest[0].wall_start is not None:
        return *_wall_window(bank, clock, intent, latest[0], times, now), True
    end = latest[0].end if latest else 0.0
    if intent.recent_s is not None:
        times.append(intent.recent_s)
        return replace(intent, t0=max(0.0, end - intent.recent_s), t1=end), times, False
    if intent.ago_s is not None:
        times.append(intent.ago_s)
        moment = max(0.0, end - intent.ago_s)
        half = max(15.0, AGO_WINDOW * intent.ago_s)
        return replace(intent, t0=max(0.0, moment - half), t1=moment + half), times, False
    if intent.since is not None:
        since = since_seconds(intent.since, wall_clock=False)
        times.append(since)
        return replace(intent, t0=since, t1=None), times, False
    moment = since_seconds(intent.at or "0", wall_clock=False)
    times.append(moment)
    return replace(intent, t0=moment, t1=moment + 1.0), times, False


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

    if intent.recent_s is not None:
        times.append(intent.recent_s)
        return replace(intent, t0=stream_time(now - intent.recent_s), t1=None), times
    if intent.ago_s is not None:
        times.append(intent.ago_s)
        half = max(15.0, AGO_WINDOW * intent.ago_s)
        moment = now - intent.ago_s
        t0, t1 = stream_time(moment - half), stream_time(moment + half, "previous")
        return replace(intent, t0=t0, t1=t1), times
    written = intent.since or intent.at or "0"
    seconds = since_seconds(written, wall_clock=True)
    times.append(seconds)
    moment = clock.latest(seconds, now)
    if intent.since is not None:
        return replace(intent, t0=stream_time(moment), t1=None), times
    t1 = stream_time(moment + clock_precision(written), "previous")
    return replace(intent, t0=stream_time(moment), t1=t1), times
