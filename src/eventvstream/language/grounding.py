"""Is a decoder's text grounded in its evidence? Its times, its numbers, and what it names.

Times, event ids and counts in an answer come from memory; the decoder only phrases. A small
model still writes times of its own ("between 0:03 and 0:10" for an event at 4.8-7.3 s), so
every time a decoder's answer states is checked against the evidence: it must fall inside (or
within rounding of) a cited event, or be a time the question itself gave. Anything else sends
the answer back to its template.

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
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from eventvstream.language import lexicon, scene
from eventvstream.language.matching import broader, term_spans
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
