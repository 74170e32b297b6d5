"""What kind of question is this? Pure text rules, no model.

Why rules: the packaged 135M decoder cannot reliably turn "what happened between 1:30 and 2:00"
into a time filter, and getting it wrong means citing the wrong events. (Profiles with a capable
decoder may parse with it instead, :mod:`eventvstream.language.intent_llm`, into this same
structure; these rules stay the default and the fallback.)

A question has a *kind* and optionally a *window* (when to look) and a *stream*:

* ``summary``  — "what happened", "summarise the video", "what did I miss", "give me an overview"
* ``now``      — "what is happening now / right now / at the moment / currently"
* ``last``     — "when did X last happen", "the last time X", "most recently"
* ``first``    — "when did X first appear", "the first time X", "earliest"
* ``count``    — "how many times did X ...", "how often"
* ``presence`` — "did we see X?", "was there a X?", "is there any X?"
* ``range``    — a window with no other shape: "what happened between 1:30 and 2:00"
* ``search``   — anything else: find the events most related to the question

Windows: "between 1:30 and 2:00", "from 60s to 90s", "in the first 2 minutes" (stream times;
a range written as clock times, "between 10:30 and 10:45", "from 9am to 11", is also kept as
written, ``between``, for a live stream's wall clock: :mod:`eventvstream.language.clock_range`);
"in the last 5 minutes", "10 minutes ago" (back from the stream's latest moment, which only the
memory knows, and on a live stream the wall clock's now); "since 10:30", "at 10:30",
"around 10:30" (a wall-clock time on a live stream, a stream time on a file — the answerer
decides, it knows which the stream is).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from eventvstream.language.clock_range import MARKED, is_clock_range, marked

Kind = Literal["summary", "now", "last", "first", "count", "presence", "range", "search"]
KINDS: tuple[str, ...] = ("summary", "now", "last", "first", "count", "presence", "range", "search")

_NUMBER = r"\d+(?:\.\d+)?"
_CLOCK = r"(?:\d+:)?\d+:\d+(?:\.\d+)?"
_UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])"
_TIME = rf"(?:{_CLOCK}|{_NUMBER}\s*{_UNIT}(?:\s*{_NUMBER}\s*{_UNIT})*|{_NUMBER})"
_SPAN = rf"(?:{_NUMBER}\s*{_UNIT}(?:\s*{_NUMBER}\s*{_UNIT})*|an? (?:hour|minute|second)|{_CLOCK})"
_END = rf"(?:{MARKED}|{_TIME})"  # "9am", "10:30 pm", "9 o'clock" first: they would stop at "9"
_RANGE = re.compile(rf"\b(?:between|from)\s+({_END})\s+(?:and|to|-|until)\s+({_END})", re.I)
_FIRST_SPAN = re.compile(rf"\b(?:in|during) the first\s+({_TIME})", re.I)
_RECENT = re.compile(
    rf"\b(?:in|during|over|for|within) the (?:last|past|previous)\s+({_TIME}|hour|minute|second)\b",
    re.I,
)
_AGO = re.compile(rf"\b(?:about |around |roughly )?({_SPAN})\s+ago\b", re.I)
_MOMENT = rf"{_CLOCK}(?:\s*[ap]\.?m\.?)?"  # "10:30", "9:05 pm": what "at" and "since" take
_SINCE = re.compile(rf"\b(?:since|after)\s+({_MOMENT}|{_TIME})", re.I)
_AT = re.compile(rf"\b(?:at|around|about)\s+({_MOMENT})", re.I)
_NOW = re.compile(
    r"\b(right now|just now|now|at the moment|currently|at present|going on|latest)\b", re.I
)
_LAST = re.compile(r"\b(last|most recent(?:ly)?|latest time)\b", re.I)
_FIRST = re.compile(r"\b(first|earliest|initially)\b", re.I)
_COUNT = re.compile(r"\b(how many|how often|number of times|count)\b", re.I)
_PRESENCE = re.compile(
    r"(?:^\s*|[,;:]\s*)(?:(?:did|do|have|has|had)\s+(?:we|you|i|they|it|anyone|the camera)\b|"
    r"(?:was|were|is|are)\s+there\b|(?:did|does|do)\s+(?:an?|the|any|some)\b|any\b|"
    r"(?:can|could)\s+you\s+see\b|"
    r"(?:is|are|was|were)\s+(?:any|anyone|anybody|someone|somebody)\b)",
    re.I,
)
_SUMMARY = re.compile(
    r"\b(summar(?:y|ise|ize)|overview|recap|gist|what did i miss|what have i missed|"
    r"what (?:has |have |had )?happened|what'?s happened|what went on|what was (?:in|on)|"
    r"what is (?:in|on)|what'?s (?:in|on)|describe|tell me about|sum up)\b",
    re.I,
)
_FILLER = re.compile(
    r"\b(when|did|does|do|was|were|is|are|the|a|an|last|time|times|most|recently|recent|"
    r"happen(?:ed|s|ing)?|see|seen|saw|spot(?:ted)?|notice(?:d)?|appear(?:ed|s|ing)?|there|"
    r"what|we|you|i|going|on|show(?:n|s|ed)?|first|earliest|initially|how|many|often|number|"
    r"of|count|any|ever|have|has|had|been|in|it|can|could|please|me|tell|about|give|"
    r"summar(?:y|ise|ize)|overview|recap|gist|miss(?:ed)?|describe|sum|up|so|far|"
    r"video|stream|clip|footage|recording|camera|feed|whole|entire|overall|today|"
    r"visible|present|shown|come|came|up|again|get|got|by|at|to|for|some)\b|[?!.,;:]",
    re.I,
)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


@dataclass(frozen=True)
class Intent:
    kind: Kind
    topic: str  # what to look for, with the time phrases and question filler removed
    t0: float | None = None
    t1: float | None = None
    #: "in the last 30 seconds": a window of this length ending at the stream's latest moment.
    recent_s: float | None = None
    #: "10 minutes ago": a moment this far back from the stream's latest moment.
    ago_s: float | None = None
    #: "since 10:30": the time as written (a wall clock on a live stream, a stream time on a file).
    since: str | None = None
    #: a stream the question names ("what happened on cam2?")
    stream: str | None = None
    #: the question asks "when": the answer must say when
    when: bool = False
    #: "at 10:30", "around 10:30": a moment as written (wall clock or stream time, as ``since``)
    at: str | None = None
    #: "between 10:30 and 10:45": a range written as clock times, both ends as written (read
    #: on a live stream's wall clock; ``t0``/``t1`` hold its stream reading, if it has one)
    between: tuple[str, str] | None = None

    @property
    def windowed(self) -> bool:
        fields = (self.t0, self.t1, self.recent_s, self.ago_s, self.since, self.at, self.between)
        return any(v is not None for v in fields)


def parse_time(text: str) -> float:
    """'1:30' -> 90, '1:02:03' -> 3723, '90s' -> 90, '2 minutes' -> 120, '1m30s' -> 90,
    'a minute' -> 60."""
    text = re.sub(r"^an?\s+", "1 ", text.strip().lower())
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


def parse(question: str, streams: Iterable[str] = ()) -> Intent:
    """The intent of ``question``; ``streams`` are the stream ids a question may name."""
    text = " ".join(question.split())
    fields: dict[str, object] = {}
    stream, text = _named_stream(text, streams)
    if stream:
        fields["stream"] = stream
    text = _window(text, fields)
    fields["when"] = bool(re.search(r"\b(when|what time|at what point)\b", text, re.I))
    kind = _kind(text, windowed=_is_windowed(fields))
    topic = _topic(_NOW.sub(" ", text) if kind == "now" else text)
    if kind == "last" and not topic:  # "what was the last thing that happened": that is now
        kind = "range" if _is_windowed(fields) else "now"
    if kind in ("first", "count", "presence") and not topic:
        ranged = any(k in fields for k in ("t0", "recent_s", "between"))
        kind = "range" if ranged else "summary"
    if kind == "search" and not topic:
        kind = "range" if _is_windowed(fields) else "summary"
    return Intent(kind, topic, **fields)  # type: ignore[arg-type]


def _is_windowed(fields: dict[str, object]) -> bool:
    return any(k in fields for k in ("t0", "recent_s", "ago_s", "since", "at", "between"))


def _kind(text: str, *, windowed: bool) -> Kind:
    if _COUNT.search(text):
        return "count"
    if _FIRST.search(text):
        return "first"
    if _LAST.search(text) and not _NOW.search(text):
        return "last"
    if _PRESENCE.search(text):
        return "presence"
    if _NOW.search(text) and not windowed:
        return "now"
    if _SUMMARY.search(text) and not _topic(text):
        return "range" if windowed else "summary"
    return "range" if windowed and not _topic(text) else "search"


def _window(text: str, fields: dict[str, object]) -> str:
    """Find the first time window in ``text``, store it in ``fields``, return the rest."""
    match = _RANGE.search(text)
    if match:
        first, second = match.group(1).strip(), match.group(2).strip()
        if is_clock_range(first, second):
            fields["between"] = (first, second)
        stream = stream_range(first, second)
        if stream is not None:
            fields["t0"], fields["t1"] = stream
        return text.replace(match.group(0), " ")
    match = _FIRST_SPAN.search(text)
    if match:
        fields["t0"], fields["t1"] = 0.0, parse_time(match.group(1))
        return text.replace(match.group(0), " ")
    match = _RECENT.search(text)
    if match:
        length = match.group(1)  # "the last minute" is one minute
        fields["recent_s"] = parse_time(length if length[0].isdigit() else "1 " + length)
        return text.replace(match.group(0), " ")
    match = _AGO.search(text)
    if match:
        fields["ago_s"] = parse_time(match.group(1))
        return text.replace(match.group(0), " ")
    match = _SINCE.search(text)
    if match:
        fields["since"] = match.group(1).strip()
        return text.replace(match.group(0), " ")
    match = _AT.search(text)
    if match:
        fields["at"] = match.group(1).strip()
        return text.replace(match.group(0), " ")
    return text


def clock_precision(written: str) -> float:
    """How long a wall-clock moment written as ``written`` lasts: "10:30" is a minute,
    "10:30:15" a second."""
    return 60.0 if written.count(":") == 1 else 1.0


def is_moment(text: str) -> bool:
    """Whether ``text`` is a moment as the rules read one after "at": "10:30", "9:05 pm"."""
    return re.fullmatch(_MOMENT, text.strip(), re.I) is not None


def is_since(text: str) -> bool:
    """Whether ``text`` is what the rules read after "since": a moment or a stream time."""
    return re.fullmatch(rf"{_MOMENT}|{_TIME}", text.strip(), re.I) is not None


def since_seconds(since: str, *, wall_clock: bool) -> float:
    """'10:30' as seconds after midnight (wall clock: hours:minutes, with am/pm) or as a
    stream time (minutes:seconds)."""
    text = since.lower().replace(".", "").strip()
    meridiem = text[-2:] if text.endswith(("am", "pm")) else ""
    text = re.sub(r"\s*[ap]m$", "", text)
    if wall_clock and ":" in text:
        parts = [float(p) for p in text.split(":")]
        hours = parts[0] % 12 + (12 if meridiem == "pm" else 0) if meridiem else parts[0]
        return hours * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0.0)
    return parse_time(text)


def _named_stream(text: str, streams: Iterable[str]) -> tuple[str | None, str]:
    """A known stream id named in the question (longest first), and the text without it (and
    without a 'on/in/from stream' before it)."""
    for name in sorted(set(streams), key=len, reverse=True):
        if len(name) < 2:
            continue
        pattern = re.compile(
            rf"(?:\b(?:on|in|from|at|for)\s+)?(?:(?:the\s+)?(?:stream|camera|video|feed)\s+)?"
            rf"(?<![\w-]){re.escape(name)}(?![\w-])(?:\s+(?:stream|camera|video|feed))?",
            re.I,
        )
        match = pattern.search(text)
        if match:
            return name, (text[: match.start()] + " " + text[match.end() :]).strip()
    return None, text


def stream_range(first: str, second: str) -> tuple[float, float] | None:
    """A range's stream reading, in order; None for one written with am/pm or o'clock (a
    clock range only)."""
    if marked(first) or marked(second):
        return None
    low, high = sorted(_range_times(first, second))
    return low, high


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
_VAGUE |= {"event", "events", "occurred", "stuff", "happenings", "new", "else", "interesting"}


def _has_subject(topic: str) -> bool:
    return any(word.lower() not in _VAGUE for word in topic.split())


_CONTRACTION = re.compile(r"['’](?:s|re|ve|d|ll|m)\b", re.I)


def _topic(text: str) -> str:
    """The words left to search for; none when only filler or vague words remain ("what's
    happening", "anything between 1:00 and 2:00" name nothing to look for). Filler *inside*
    the phrase stays: "a man in a car" is "man in a car", not "man car"."""
    tokens = _CONTRACTION.sub(" ", text).replace(",", " , ").split()
    kept = [
        i
        for i, token in enumerate(tokens)
        if _FILLER.sub("", token).strip() and token.lower().strip("?!.;:") not in _VAGUE
    ]
    if not kept:
        return ""
    span = tokens[kept[0] : kept[-1] + 1]
    words = [t.strip("?!.,;:") for t in span if t.strip("?!.,;:")]
    return " ".join(words) if _has_subject(" ".join(words)) else ""
