"""Templated answers: every time, ``[#id]`` and count in them comes from the events.

These are the answers when there is no decoder, when a decoder's phrasing fails the checks in
:mod:`eventvstream.language.qa`, and the "correct answer" a decoder is asked to rephrase.
"When" answers always say when: in stream time for a file's events, on the clock (in the
configured zone, named) for a live stream's (:class:`~eventvstream.language.grounding.Times`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from eventvstream.language import summary as timeline
from eventvstream.language.grounding import Times, clock, duration
from eventvstream.language.intent import Intent
from eventvstream.language.scene import indefinite_article
from eventvstream.memory.store import EventRow

#: Sightings listed by time in one answer at most (the rest are counted).
MAX_LISTED = 6
#: Matching events this close in time, with no non-matching event between, are one sighting.
JOIN_GAP_S = 1.0
_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def where(intent: Intent, stream: str | None, zone: str | None = None) -> str:
    """' on cam1 between 0:10 and 0:20' — the scope the answer speaks about. ``zone``: the
    window was read on the wall clock (a live stream), in the zone so named; it is then said
    as the question put it ("since 10:30 UTC", "in the last 5 minutes"; a range as it was read,
    "between 10:30 and 11:00 UTC" for "from 10:30am to 11"), not as the stream times it
    became."""
    text = f" on {stream}" if stream else ""
    if zone is not None:
        if intent.recent_s is not None:
            return f"{text} in the last {duration(intent.recent_s)}"
        if intent.ago_s is not None:
            return f"{text} around {duration(intent.ago_s)} ago"
        if intent.since is not None:
            return f"{text} since {intent.since} {zone}"
        if intent.at is not None:
            return f"{text} at {intent.at} {zone}"
        if intent.between is not None:  # the ends as read: "between 10:30 and 11:00 UTC"
            return f"{text} between {intent.between[0]} and {intent.between[1]} {zone}"
    if intent.t0 is not None and intent.t1 is not None:
        text += f" between {clock(intent.t0)} and {clock(intent.t1)}"
    elif intent.t0 is not None:
        text += f" since {clock(intent.t0)}"
    return text


def as_broader(topic: str, word: str) -> str:
    """How an answer names a broader stand-in: 'an animal (I could not tell if it was a
    rabbit)' — said, so nobody mistakes it for a sighting of the thing itself."""
    article = indefinite_article(word)
    return f"{article} {word} (I could not tell whether it was {_with_article(topic)})"


_NO_ARTICLE = {"a", "an", "the", "any", "some", "people", "men", "women", "children", "someone"}


def _with_article(topic: str) -> str:
    """'rabbit' -> 'a rabbit'; plurals and mass words stay as they are."""
    if not topic or topic.split()[0].lower() in _NO_ARTICLE or topic.endswith("s"):
        return topic
    return f"{indefinite_article(topic)} {topic}"


def _at(row: EventRow, times: Times) -> str:
    return f"{times.of(row)} [#{row.id}]"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(
    intent: Intent,
    rows: Sequence[EventRow],
    stream: str | None,
    times: Times | None = None,
    zone: str | None = None,
) -> str:
    """The timeline of ``rows``; "nothing" only when the scope truly has no events. ``zone``:
    as :func:`where`."""
    scope = where(intent, stream, zone)
    if not rows:
        if intent.windowed:
            return f"I have no events in memory{scope}."
        return f"I have no events in memory yet{scope}."
    heading = f"What happened{scope}" if scope else "What happened"
    return timeline.timeline(rows, heading=heading, times=times)


def now(rows: Sequence[EventRow], times: Times | None = None) -> str:
    """The latest event; on a live stream the still-open one (id < 0, not stored yet, so not
    cited) comes first, then the last stored event."""
    if not rows:
        return "I have no events in memory yet for this stream."
    times = times or Times()
    row = rows[-1]
    if row.id >= 0:
        return f"Most recently, from {_at(row, times)}: {timeline.what(row)}"
    text = f"Right now (since {times.since(row)}, still going on): {timeline.what(row)}"
    stored = [r for r in rows if r.id >= 0]
    if stored:
        text += f" Before that, from {_at(stored[-1], times)}: {timeline.what(stored[-1])}"
    return text


def last(topic: str, hits: Sequence[EventRow], scope: str, times: Times | None = None) -> str:
    topic = _with_article(topic)
    if not hits:
        return f"I did not see {topic}{scope}."
    row = max(hits, key=lambda r: (r.end, r.id))
    more = f" (seen {_plural(len(hits), 'event')} in all)" if len(hits) > 1 else ""
    when = _at(row, times or Times())
    return f"The last time I saw {topic} was {when}{more}: {timeline.what(row)}"


def first(topic: str, hits: Sequence[EventRow], scope: str, times: Times | None = None) -> str:
    topic = _with_article(topic)
    if not hits:
        return f"I did not see {topic}{scope}."
    row = min(hits, key=lambda r: (r.start, r.id))
    return f"I first saw {topic} from {_at(row, times or Times())}: {timeline.what(row)}"


def occurrences(hits: Sequence[EventRow], rows: Sequence[EventRow]) -> list[list[EventRow]]:
    """Matching events grouped into sightings: consecutive matches (no other event between
    them and at most ``JOIN_GAP_S`` apart) are one appearance cut into several events."""
    matched = {row.id for row in hits}
    runs: list[list[EventRow]] = []
    previous: EventRow | None = None
    for row in sorted(rows, key=lambda r: (r.start, r.id)):
        if row.id in matched:
            joined = previous is not None and previous.id in matched
            if joined and runs and row.start - runs[-1][-1].end <= JOIN_GAP_S:
                runs[-1].append(row)
            else:
                runs.append([row])
        previous = row
    return runs


def count(
    topic: str, runs: Sequence[Sequence[EventRow]], scope: str, times: Times | None = None
) -> str:
    topic = _with_article(topic)
    if not runs:
        return f"I did not see {topic}{scope}: 0 times."
    times = times or Times()
    listed = ", ".join(f"{times.extent(r)} [{_ids(r)}]" for r in runs[:MAX_LISTED])
    rest = f" and {len(runs) - MAX_LISTED} more" if len(runs) > MAX_LISTED else ""
    return f"I saw {topic} {_plural(len(runs), 'time')}{scope}: {listed}{rest}."


def _ids(run: Sequence[EventRow]) -> str:
    """A sighting's first and last events: the sources of the span it states."""
    return ", ".join(f"#{i}" for i in dict.fromkeys((run[0].id, run[-1].id)))


def presence(
    topic: str,
    hits: Sequence[EventRow],
    scope: str,
    broader: str | None = None,
    times: Times | None = None,
) -> str:
    """Yes (with when), no — or, when only the nearest broader word was seen (``broader``:
    the bicycles the classifier sees as "a vehicle"), neither: a hedge that says what was seen
    and when, and that it could not tell. A flat "no" there would deny what the camera saw; a
    "yes" would claim more than the labels support."""
    topic = _with_article(topic)
    times = times or Times()
    if broader is not None and hits:
        listed = ", ".join(_at(r, times) for r in hits[:3])
        rest = f" (and {_plural(len(hits) - 3, 'more event')})" if len(hits) > 3 else ""
        seen = as_broader(topic, broader)
        return f"Not sure: I saw {seen}{scope}: {listed}{rest}."
    if not hits:
        return f"No, I did not see {topic}{scope}."
    listed = ", ".join(_at(r, times) for r in hits[:3])
    rest = f" (and {_plural(len(hits) - 3, 'more event')})" if len(hits) > 3 else ""
    return f"Yes, I saw {topic}{scope}: {listed}{rest}."


def sightings(topic: str, rows: Sequence[EventRow], scope: str, times: Times | None = None) -> str:
    if not rows:
        return f"I have nothing in memory about {topic}{scope}."
    times = times or Times()
    parts = [f"{_at(r, times)}: {timeline.what(r)}" for r in rows[:MAX_LISTED]]
    return f"{topic[0].upper() + topic[1:]}{scope}, seen at " + "; ".join(parts)


def states_count(text: str, n: int) -> bool:
    """Whether ``text`` states the count ``n`` (as digits or a word) and no other count."""
    word = _NUMBERS[n] if n < len(_NUMBERS) else None
    said = re.search(rf"\b{n}\b", text) or (word and re.search(rf"\b{word}\b", text, re.I))
    return bool(said)


def states_yes_no(text: str, present: bool) -> bool:
    """Whether ``text`` opens with the word yes (or no): "Not sure: ..." is neither."""
    return re.match(r"(yes|no)\b", text.strip().lower()) is not None and (
        text.strip().lower().startswith("yes") == present
    )
