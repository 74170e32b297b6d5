"""Prompt construction: what the decoder is told about an event, and how a question is posed.

Pure text (no model code, no I/O), so it is unit-tested directly. A text-only LLM cannot see the
frames, so it gets a **perception text** in words, never raw scores: the event's time span, what
the image encoder saw in its keyframes (the subject its labels agree on and what else is seen with
it, rolled up to everyday words, or "unclear content" with the likeliest guesses), its look
(brightness, colour, camera motion) and how it began (a cut, a fade or a gradual change; nothing
for the stream's start); related past events come before it as earlier turns with their captions. A
vision-language model gets the same text plus the keyframes themselves.

Small models (the packaged 135M one) drift into invented stories when asked open questions, so
the caption prompt is few-shot: two worked examples teach "one short sentence, only what the
labels support" better than any instruction does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from eventvstream.language import scene
from eventvstream.language.base import ChatMessage, GenerationRequest
from eventvstream.language.grounding import Times
from eventvstream.memory.rows import EventRow

CAPTION_SYSTEM = (
    "You caption events in a video stream. Reply with one short, plain sentence saying what "
    "is visible, using only what you are told was seen. Say nothing about unclear content "
    "beyond its look. Do not invent names, numbers or stories."
)
_FEW_SHOT = [
    (
        "Event from 4.0 s to 9.5 s.\nSeen: a golden retriever (a dog, an animal) with a tennis "
        "ball.\nLook: mostly green, a still shot.\nCaption:",
        "A golden retriever with a tennis ball, mostly green.",
    ),
    (
        "Event from 31.0 s to 40.0 s.\nSeen: unclear content (maybe a streetcar).\nLook: "
        "bright, mostly blue, zooming.\nIt began with a cut.\nCaption:",
        "A bright, mostly blue scene, the camera zooming.",
    ),
]
# (The worked answers name only what their lines say: the content check rejects a caption
# that names anything else, and a small model copies the examples' habits. The earlier "on
# green grass" and "a dark street scene" showed it a setting invented beyond the lines.)
#: The worked answers above: a caption that mostly repeats one is a copy, not a description.
EXAMPLE_CAPTIONS = tuple(answer for _, answer in _FEW_SHOT)
ANSWER_SYSTEM = (
    "You answer questions about a video from a log of its events. Use only the events listed. "
    "Cite the events you use as [#id]. If the events do not answer the question, say so."
)
MAX_CAPTION_CHARS = 200
# A sentence ends at . ! or ? (optionally inside a closing quote) followed by whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|(?<=[.!?][\"”])\s")
_QUOTES = '"“”'
_ECHO = re.compile(r"^(caption|answer)\s*:\s*", re.IGNORECASE)


def span(start: float, end: float) -> str:
    return f"{start:.1f} s to {end:.1f} s"


def perception_text(event: EventRow) -> str:
    """What a text-only decoder is told about an event: its span, what was seen (labels pooled
    over its frames, rolled up to everyday words, unclear when nothing is confident), its look
    and how it began."""
    return "\n".join(
        [f"Event from {span(event.start, event.end)}.", *scene.perception_lines(event)]
    )


def caption_request(
    event: EventRow,
    related: Sequence[EventRow] = (),
    *,
    max_new_tokens: int = 40,
    temperature: float = 0.0,
    images: Sequence[np.ndarray] = (),
) -> GenerationRequest:
    messages = [ChatMessage("system", CAPTION_SYSTEM)]
    for user, assistant in _FEW_SHOT:
        messages += [ChatMessage("user", user), ChatMessage("assistant", assistant)]
    # Related past events enter as earlier turns of the same conversation (their perception
    # text, then their caption), in time order. Listed inside the new event's prompt instead,
    # a small model copies their captions verbatim; as history it continues the story.
    for past in sorted((r for r in related if r.caption), key=lambda r: r.start):
        messages += [
            ChatMessage("user", perception_text(past) + "\nCaption:"),
            ChatMessage("assistant", past.caption or ""),
        ]
    text = perception_text(event) + "\nCaption:"
    messages.append(ChatMessage("user", text, images=list(images)))
    return GenerationRequest(messages, max_new_tokens=max_new_tokens, temperature=temperature)


def clean_caption(text: str) -> str:
    """First sentence of the first line, no quotes or 'Caption:' echo, bounded length."""
    text = text.strip()
    quoted = text.startswith(tuple(_QUOTES))
    text = _ECHO.sub("", text.lstrip(_QUOTES).lstrip())  # '"Caption: ...' and 'Caption: ...'
    quoted = quoted or text.startswith(tuple(_QUOTES))  # 'Caption: "..."'
    text = text.lstrip(_QUOTES).lstrip()
    # A small model that goes on after a line break is starting another turn of the prompt
    # ("Event from ..."), not finishing its sentence.
    line = next((line for line in text.splitlines() if line.strip()), "")
    first = _SENTENCE_END.split(" ".join(line.split()), maxsplit=1)[0].strip()
    if quoted:
        first = first.rstrip(_QUOTES).rstrip()
    if len(first) > MAX_CAPTION_CHARS:
        first = first[: MAX_CAPTION_CHARS - 1].rsplit(" ", 1)[0].rstrip() + "…"
    return first


def fallback_caption(event: EventRow) -> str:
    """What an event says when the decoder produced nothing usable: a templated description
    of what was seen and how it looks."""
    return scene.describe(event)


def description(caption: str | None, event: EventRow) -> str:
    """The text the memory's text index embeds: the caption plus the labels and the everyday
    words above them ("cockatoo" also says "parrot, bird"), so a question about a thing finds
    the event even when a small model's caption left it out."""
    words = ", ".join(scene.index_words(event.labels))
    parts = [caption] if caption else []
    if words:
        parts.append(f"Seen: {words}.")
    return " ".join(parts) or "a video event"


def evidence_text(events: Sequence[EventRow], times: Times | None = None) -> str:
    """The events an answer may use, one line each. A live stream's are given on the clock
    (``times``), as its answer states them: a decoder copies the times it is shown."""
    lines = []
    for row in events:
        what = row.caption or fallback_caption(row)
        when = (
            span(row.start, row.end) if row.wall_start is None or times is None else times.of(row)
        )
        lines.append(f"[#{row.id}] {row.stream}, {when}: {what}")
    return "\n".join(lines)


def answer_request(
    question: str,
    events: Sequence[EventRow],
    *,
    framing: str = "",
    max_new_tokens: int = 160,
    temperature: float = 0.0,
    times: Times | None = None,
) -> GenerationRequest:
    body = f"Events:\n{evidence_text(events, times)}\n\n"
    if framing:
        body += framing + "\n"
    body += (
        f"Question: {question}\nAnswer in one or two plain sentences, citing events as [#id]. "
        "Use only times and facts from the events listed."
    )
    messages = [ChatMessage("system", ANSWER_SYSTEM), ChatMessage("user", body)]
    return GenerationRequest(messages, max_new_tokens=max_new_tokens, temperature=temperature)


_CITATION = re.compile(r"\[#?(\d+)\]|#(\d+)")


def cited_ids(text: str) -> list[int]:
    """Event ids an answer cites ([#12], [12] or #12), in order, without repeats."""
    found: list[int] = []
    for match in _CITATION.finditer(text):
        value = int(match.group(1) or match.group(2))
        if value not in found:
            found.append(value)
    return found
