"""Is a decoder's text grounded in its evidence? Its times, its numbers, and what it names.

An event of a file is told by stream time ("4.8 s to 7.3 s"); an event with a wall clock (a
live or pulled stream's) by the clock, in the configured zone ("10:31:05 to 10:31:14 UTC",
:mod:`eventvstream.language.wallclock`): :class:`Times` picks per event, so every answer family
states the times its citations carry.

Times, event ids and counts in an answer come from memory; the decoder only phrases. A small
model still writes times of its own ("between 0:03 and 0:10" for an event at 4.8-7.3 s), so
every time a decoder's answer states is checked against the evidence: it must fall inside (or
within rounding of) a cited event — a clock time inside a cited event's wall-clock span, when
the event has one — or be a time the question itself gave. Anything else sends the answer back
to its template.

It also writes *content* of its own: "[#10] ... was confirmed as a malfunction of the vehicle's
electrical system" passed every time and id check. :func:`invented_content` is the one content
check, used for phrased answers (``qa.Answerer.problem``) and for captions
(``caption_check.problem``): the text may name only what its evidence names. The evidence
(:func:`evidence`) is what perception measured about the events (their pooled labels and the
everyday words above them, their look and how they began: the lines a decoder is told), their
captions, and texts the caller adds (the question, the templated answer). The check is lexical
and explainable: vocabulary terms are compared as terms (a "bike" is a bicycle; a "car" may
stand for a limousine, never the other way round), every other word by a crude stem, and grammar
and answer-frame words need no evidence (:mod:`eventvstream.language.lexicon`).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from eventvstream.language import lexicon, scene
from eventvstream.language.matching import broader, term_spans
from eventvstream.language.wallclock import Clock, marks, strip_marks
from eventvstream.memory.store import EventRow
from eventvstream.perception.vocabulary import roll_up

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


def duration(seconds: float) -> str:
    """A length as a question says it: '5 minutes', '1 hour', '90 seconds'."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}" + ("" if n == 1 else "s")
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")


class Timed(Protocol):
    """What the time check needs of a piece of evidence: a stored event, or a citation."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def wall_start(self) -> float | None: ...


@dataclass(frozen=True)
class Span:
    """Evidence read back from an answer's citation (``start``/``end``/``wall_start``)."""

    start: float
    end: float
    wall_start: float | None = None


@dataclass(frozen=True)
class Times:
    """How one answer writes times: stream times for events without a wall clock, the clock
    in ``clock``'s zone for events with one. ``now`` decides which day is "today" (undated)."""

    clock: Clock = field(default_factory=Clock)
    now: float = field(default_factory=time.time)

    def of(self, row: Timed) -> str:
        """An event's span: '4.8 s to 7.3 s', or '10:31:05 to 10:31:14 UTC'."""
        return self.extent([row])

    def extent(self, rows: Sequence[Timed]) -> str:
        """From the first start to the last end of ``rows``: on the clock when every one has
        a wall clock (one live stream), else in stream time."""
        start, end = min(r.start for r in rows), max(r.end for r in rows)
        walls = _walls(rows)
        if len(walls) < len(rows):
            return span(start, end)
        wall_end = max(w + r.end - r.start for r, w in walls)
        return self.clock.span(min(w for _, w in walls), wall_end, self.now)

    def since(self, row: Timed) -> str:
        """When an event began: '27.8 s' or '10:31:05 UTC'."""
        if row.wall_start is None:
            return clock(row.start)
        return self.clock.moment(row.wall_start, self.now)

    def zone(self) -> str:
        """The zone's name as answers say it ('UTC')."""
        return self.clock.label(self.now)


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


def allowed(t: float, events: Sequence[Timed], extra: Iterable[float] = ()) -> bool:
    """Whether time ``t`` belongs to one of ``events`` or is one of ``extra`` (the question's)."""
    for row in events:
        if row.start - TOLERANCE_S <= t <= row.end + TOLERANCE_S:
            return True
    return any(abs(t - x) <= TOLERANCE_S for x in extra)


def invented_times(
    text: str, events: Sequence[Timed], extra: Iterable[float] = (), zone: Clock | None = None
) -> list[float]:
    """The times ``text`` states that belong to no event in ``events`` and to no ``extra``
    (the question's times, in seconds: a stream time, or a clock time as seconds after
    midnight). With wall-clock evidence (a live stream's), a clock time like "10:31:05" is read
    on ``zone``'s clock (UTC unless given) and must fall in such an event's wall-clock span, or
    be the question's ("since 10:30" echoed); a time of the form "1:30" may still be a stream
    time of an event without a clock. Returned in seconds (clock times after midnight)."""
    extra = list(extra)
    if not _walls(events):
        return [t for t in stated_times(text) if not allowed(t, events, extra)]
    zone = zone or Clock()
    others = [e for e in events if e.wall_start is None]
    bad: list[float] = []
    spans = [(w - TOLERANCE_S, w + e.end - e.start + TOLERANCE_S) for e, w in _walls(events)]
    for mark in marks(text):
        on_clock = any(mark.within(zone, a, b) for a, b in spans)
        asked = any(abs(x - t) <= TOLERANCE_S for x in extra for t in (mark.day_s, mark.stream_s))
        if not (on_clock or asked or allowed(mark.stream_s, others)):
            bad.append(mark.day_s)
    rest = strip_marks(text)  # what is left states unit times ("5 minutes"): stream times
    return bad + [t for t in stated_times(rest) if not allowed(t, events, extra)]


def _walls(events: Sequence[Timed]) -> list[tuple[Timed, float]]:
    return [(e, e.wall_start) for e in events if e.wall_start is not None]


def stray_numbers(text: str, allowed: Iterable[int] = ()) -> list[str]:
    """Numbers in ``text`` that are neither a time, an ``[#id]`` nor one of ``allowed`` (a
    count): a small model's "The answer is: 2014-01-01" gives itself away here."""
    rest = re.sub(r"\[#?\d+(?:,\s*#?\d+)*\]|#\d+", " ", text)
    rest = _UNIT.sub(" ", _CLOCK.sub(" ", strip_marks(rest)))  # a dated clock time is a time
    keep = {str(n) for n in allowed}
    # digits inside a name ("qa_held1", "cam2": the stream the template names) state nothing
    return [n for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?!\w)", rest) if n not in keep]


# -- content -------------------------------------------------------------------------------------
#: The reason a text fails :func:`invented_content` (a stable key for counters; the words named
#: follow it in an answer's reason).
INVENTED = "names something not in the evidence"


@dataclass(frozen=True)
class Evidence:
    """What a text may name: vocabulary terms (with every everyday word above them) and the
    stems of every word the evidence says."""

    terms: frozenset[str]
    stems: frozenset[str]


@lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(term for _, _, term in term_spans(text)))


def event_texts(row: EventRow, *, caption: bool = True) -> list[str]:
    """What a decoder is told about an event (its stream's name, its perception lines: what
    was seen, its look, how it began) and, with ``caption``, its stored caption."""
    texts = [row.stream, *scene.perception_lines(row)]
    if caption and row.caption:
        texts.append(row.caption)
    return texts


def evidence(
    rows: Sequence[EventRow], texts: Iterable[str] = (), *, captions: bool = True
) -> Evidence:
    """The evidence of ``rows`` (see the module docstring) plus ``texts`` (the question, the
    templated answer). ``captions=False`` for checking a caption of the event itself."""
    given = list(texts)
    said: list[str] = []
    terms: set[str] = set()
    for row in rows:
        said += event_texts(row, caption=captions)
        terms.update(word for word, p in roll_up(row.labels) if p >= scene.POSSIBLE_P)
        camera = Counter(
            k["look"]["camera"] for k in row.keyframes if (k.get("look") or {}).get("camera")
        )
        if camera:  # "fast motion" may be said "rapidly", "fast-moving"
            said += lexicon.CAMERA_WORDS.get(camera.most_common(1)[0][0], ())
    for text in said:
        terms.update(_terms(text.lower()))
    for term in list(terms):  # a word above a term names the same thing, less precisely
        terms.update(broader(term))
    for text in given:  # the question's things as named (a synonym too), nothing above them:
        terms.update(_terms(text.lower()))  # "a dog?" does not make any animal evidence
    stems = {s for text in said + given for word in lexicon.words(text) for s in _stems(word)}
    return Evidence(frozenset(terms), frozenset(stems))


def _stems(word: str) -> frozenset[str]:
    """A word's stems; a hyphenated word's parts' too ("fast-moving": fast, moving, move)."""
    found = set(lexicon.stems(word))
    for part in word.split("-") if "-" in word else ():
        found |= lexicon.stems(part)
    return frozenset(found)


def _known(word: str, ev: Evidence) -> bool:
    if lexicon.frame(word) or not lexicon.stems(word).isdisjoint(ev.stems):
        return True
    parts = word.split("-")
    return len(parts) > 1 and all(_known(part, ev) for part in parts if part)


def invented_content(text: str, ev: Evidence) -> list[str]:
    """What ``text`` names that ``ev`` does not, in the order written (empty: grounded).

    A vocabulary term ("a malfunction" is none, "a tank" is one) must be a term of the
    evidence or above one (a limousine's "car", "vehicle"), or be said in the evidence's own
    words (the question's "a cartoon woman"). Every other word must be frame (grammar, the
    words an answer is made of, the filming) or share a stem with a word of the evidence
    ("riding" needs a "ride" or "rides" there)."""
    lowered = text.lower()
    invented: list[tuple[int, str]] = []
    rest = list(lowered)
    for start, end, term in term_spans(lowered):
        rest[start:end] = " " * (end - start)
        if term in ev.terms or term in lexicon.FILMING_WORDS:
            continue
        said = lowered[start:end]
        if not all(_known(word, ev) for word in lexicon.words(said)):
            invented.append((start, said))
    for start, word in lexicon.word_spans("".join(rest)):
        if not _known(word, ev):
            invented.append((start, word))
    return list(dict.fromkeys(word for _, word in sorted(invented)))
