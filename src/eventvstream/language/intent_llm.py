"""Question -> :class:`~eventvstream.language.intent.Intent` by a capable decoder, as JSON.

On profiles whose decoder can follow instructions (gpu, remote), it parses the question into the
same structure the rules produce; that handles phrasings no rule foresaw ("has the dog shown up
since lunch?"). The output is constrained where the backend can constrain it (OpenAI-compatible
servers get ``response_format`` with :data:`SCHEMA`: vLLM, SGLang and llama.cpp's server honour
it) and validated everywhere: a kind outside the list, a stream that does not exist, a time
the question never stated, or a clock time ("since"/"at", a range's "between") the rules would
not read as one, and the parse is refused — the caller falls back to the rules.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from eventvstream.language.base import ChatMessage, Decoder, GenerationRequest, generate
from eventvstream.language.clock_range import is_clock_range
from eventvstream.language.grounding import TOLERANCE_S, stated_times
from eventvstream.language.intent import KINDS, Intent, is_moment, is_since, stream_range

log = logging.getLogger(__name__)

_NUMBER_OR_NULL = {"type": ["number", "null"]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "topic": {"type": "string"},
        "t0": _NUMBER_OR_NULL,
        "t1": _NUMBER_OR_NULL,
        "recent_s": _NUMBER_OR_NULL,
        "ago_s": _NUMBER_OR_NULL,
        "since": {"type": ["string", "null"]},
        "at": {"type": ["string", "null"]},
        "between": {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "minItems": 2,
            "maxItems": 2,
        },
        "stream": {"type": ["string", "null"]},
        "when": {"type": "boolean"},
    },
    "required": ["kind", "topic"],
    "additionalProperties": False,
}
SYSTEM = (
    "You turn a question about a video into JSON with these fields: kind (summary: what "
    "happened overall; now: what is happening now; last / first: when something was last or "
    "first seen; count: how many times; presence: was something seen, yes or no; range: what "
    "happened in a time window; search: anything else), topic (the thing asked about, without "
    "articles; empty when none), t0 and t1 (window in seconds of video, or null), recent_s (for "
    '"in the last N minutes", in seconds), ago_s (for "N minutes ago", in seconds), since (a '
    'clock time as written, for "since 10:30"), at (a clock time as written, for "at 10:30" or '
    '"around 9:05 pm"), between (a range written as clock times, its two ends as written, '
    'for "between 10:30 and 10:45" or "from 9am to 11"), stream (one of the known streams, if '
    "named), when (true if the question asks when). Reply with the JSON object only."
)
_EXAMPLES = [
    ("when did we last see a red car? Known streams: cam1, door.",
     {"kind": "last", "topic": "red car", "when": True}),
    ("was there a dog on door between 1:00 and 1:30? Known streams: cam1, door.",
     {"kind": "presence", "topic": "dog", "t0": 60, "t1": 90, "stream": "door"}),
    ("what happened at 10:30? Known streams: cam1, door.",
     {"kind": "range", "topic": "", "at": "10:30"}),
    ("did a car pass from 9am to 11? Known streams: cam1, door.",
     {"kind": "presence", "topic": "car", "between": ["9am", "11"]}),
]  # fmt: skip


def request_for(question: str, streams: Sequence[str]) -> GenerationRequest:
    known = ", ".join(streams) if streams else "none"
    messages = [ChatMessage("system", SYSTEM)]
    for text, parsed in _EXAMPLES:
        messages += [ChatMessage("user", text), ChatMessage("assistant", json.dumps(parsed))]
    messages.append(ChatMessage("user", f"{question} Known streams: {known}."))
    return GenerationRequest(messages, max_new_tokens=96, temperature=0.0, json_schema=SCHEMA)


def parse_with_decoder(
    decoder: Decoder, question: str, streams: Sequence[str] = ()
) -> Intent | None:
    """The decoder's parse of ``question``, or None when it fails validation (use the rules)."""
    try:
        raw = generate(decoder, request_for(question, streams))
    except Exception:  # a parse is an optional nicety: any failure means "use the rules"
        log.exception("decoder intent parse failed")
        return None
    return validate(raw, question, streams)


def validate(raw: str, question: str, streams: Sequence[str]) -> Intent | None:
    """An Intent from the decoder's JSON text when every field is sound, else None."""
    match = re.search(r"\{.*\}", raw, re.S)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        return None
    topic = data.get("topic") or ""
    stream = data.get("stream") or None
    if not isinstance(topic, str) or (stream is not None and stream not in streams):
        return None
    numbers: dict[str, float | None] = {}
    for key in ("t0", "t1", "recent_s", "ago_s"):
        value = data.get(key)
        if value is not None and not isinstance(value, int | float):
            return None
        numbers[key] = None if value is None else float(value)
    said = stated_times(question)
    for value in numbers.values():  # times must be the question's, not the decoder's
        if value is not None and not any(abs(value - t) <= TOLERANCE_S for t in said):
            return None
    since, at = data.get("since") or None, data.get("at") or None  # "" is "none" too
    if not _written(since, question, is_since) or not _written(at, question, is_moment):
        return None
    since, at = since and since.strip(), at and at.strip()
    ends = data.get("between") or None  # [] is "none" too
    if not _clock_range(ends, question):
        return None
    between = (ends[0].strip(), ends[1].strip()) if ends else None
    if between and numbers["t0"] is None and numbers["t1"] is None:  # its stream reading
        numbers["t0"], numbers["t1"] = stream_range(*between) or (None, None)
    return Intent(
        data["kind"],
        " ".join(re.sub(r"^(?:an?|the)\s+", "", topic.strip(), flags=re.I).split()),
        numbers["t0"],
        numbers["t1"],
        numbers["recent_s"],
        numbers["ago_s"],
        since,
        stream,
        bool(data.get("when", False)),
        at,
        between,
    )


def _written(value: Any, question: str, shape: Callable[[str], bool]) -> bool:
    """A "since"/"at" value is sound when absent, or a string of the shape the rules read there
    that the question itself contains (not a time the decoder made up: "around 11", "noon")."""
    if value is None:
        return True
    return isinstance(value, str) and shape(value) and value.strip() in question


def _clock_range(value: Any, question: str) -> bool:
    """A "between" value is sound when absent, or two strings the question contains that the
    rules read as a clock range (:func:`is_clock_range`: not "0:30" to "0:45", not "noon"),
    each written whole ("0:30" is not in "10:30")."""
    if value is None:
        return True
    if not isinstance(value, list) or len(value) != 2:
        return False
    for end in value:
        whole = isinstance(end, str) and end.strip()
        if not whole or not re.search(rf"(?<![\w:.]){re.escape(whole)}(?![\w:])", question):
            return False
    return is_clock_range(value[0], value[1])
