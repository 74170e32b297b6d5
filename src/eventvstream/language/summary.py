"""A timeline of the events in scope, citing them: the answer to "what happened?".

Short streams get one line per event. Long ones are hierarchical: the span is cut into at most
``MAX_PERIODS`` equal periods, each summed up by the everyday words seen longest in it (labels
rolled up and weighted by event duration) and citing its first and last events (whose times it
states), then one line for the whole. The cost is one pass over the rows and no decoder call,
so a 2-hour stream with thousands of events answers as fast as a short one. Spans are stream
times for a file, the wall clock for a live stream (:class:`~.grounding.Times`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from eventvstream.language import scene
from eventvstream.language.grounding import Times
from eventvstream.memory.store import EventRow
from eventvstream.perception.vocabulary import CONFIDENT_P, roll_up

#: Up to this many events, one line each.
MAX_LINES = 12
MAX_PERIODS = 8
_GENERIC = {"animal", "mammal", "vehicle", "container", "food", "clothing", "plant"}


def what(row: EventRow) -> str:
    """An event in a few words: its caption when it has one, else its templated description."""
    return row.caption or scene.describe(row)


def event_line(row: EventRow, times: Times | None = None) -> str:
    return f"[#{row.id}] {(times or Times()).of(row)}: {what(row)}"


def top_words(rows: Sequence[EventRow], limit: int = 3) -> list[str]:
    """The most specific everyday words seen longest over ``rows``."""
    weights: dict[str, float] = {}
    for row in rows:
        duration = max(row.end - row.start, 0.1)
        for word, p in roll_up(row.labels):
            if p >= CONFIDENT_P:
                weights[word] = weights.get(word, 0.0) + p * duration
    ranked = sorted(weights, key=lambda w: -weights[w])
    specific = [w for w in ranked if w not in _GENERIC] or ranked
    return specific[:limit]


def period_line(rows: Sequence[EventRow], times: Times | None = None) -> str:
    ordered = sorted(rows, key=lambda r: (r.start, r.id))
    cited = list({r.id: r for r in (ordered[0], ordered[-1])}.values())  # its times' sources
    ids = ", ".join(f"#{r.id}" for r in cited)
    words = top_words(rows)
    seen = ", ".join(words) if words else "nothing clearly recognised"
    count = f"{len(rows)} event" + ("s" if len(rows) != 1 else "")
    return f"{(times or Times()).extent(rows)} [{ids}]: {seen} ({count})"


def timeline(rows: Sequence[EventRow], *, heading: str = "", times: Times | None = None) -> str:
    """The summary text of ``rows`` (time-ordered, non-empty)."""
    times = times or Times()
    rows = sorted(rows, key=lambda r: (r.start, r.id))
    start, end = rows[0].start, max(r.end for r in rows)
    count = f"{len(rows)} event" + ("s" if len(rows) != 1 else "")
    head = heading or "What happened"
    lines = [f"{head} ({times.extent(rows)}, {count}):"]
    if len(rows) <= MAX_LINES:
        lines += [f"- {event_line(r, times)}" for r in rows]
        return "\n".join(lines)
    periods = min(MAX_PERIODS, math.ceil(len(rows) / 3))
    step = (end - start) / periods or 1.0
    groups: list[list[EventRow]] = [[] for _ in range(periods)]
    for row in rows:
        groups[min(periods - 1, int((row.start - start) / step))].append(row)
    for group in groups:
        if group:
            lines.append(f"- {period_line(group, times)}")
    overall = top_words(rows, limit=5)
    if overall:
        lines.append("Overall: mostly " + ", ".join(overall) + ".")
    return "\n".join(lines)
