"""Verification: before a semantic watch fires, ask the decoder a yes/no question.

Similarity of sentence embeddings is fast but loose ("a cat" is near "a dog"); a decoder reading
the event's description and the watch's words is slower and stricter. The answer is constrained
by the prompt and a budget of a few tokens, then read as yes / no; anything else counts as "not
verified" (the watch does not fire) and is reported in the alert log as the raw answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from eventvstream.config import AlertSettings
from eventvstream.language.base import ChatMessage, GenerationRequest, generate
from eventvstream.memory.rows import EventRow

log = logging.getLogger(__name__)

SYSTEM = (
    "You check events seen by a camera. Reply with exactly one word: yes or no. "
    "Say yes only if the description clearly shows what is asked."
)
_WORD = re.compile(r"[a-z]+")


def question(watch_text: str, row: EventRow) -> list[ChatMessage]:
    labels = ", ".join(str(label[0]) for label in row.labels[:3])
    description = row.caption or row.text or labels or "(no description)"
    user = (
        f"Event description: {description}\n"
        f"Things recognised: {labels or 'none'}\n"
        f"Question: does this event show {watch_text.strip().rstrip('?')}? Answer yes or no."
    )
    return [ChatMessage("system", SYSTEM), ChatMessage("user", user)]


def read_answer(text: str) -> bool | None:
    """The first word of the answer as yes (True) / no (False), else None."""
    words = _WORD.findall(text.lower())
    if not words:
        return None
    return {"yes": True, "no": False}.get(words[0])


def ask(
    decoder: Any, watch_text: str, row: EventRow, settings: AlertSettings
) -> tuple[bool | None, str | None]:
    """(verified, raw answer). No decoder: (None, None) — the alert says it is unverified."""
    if decoder is None:
        return None, None
    request = GenerationRequest(
        question(watch_text, row), max_new_tokens=settings.verify_max_tokens, temperature=0.0
    )
    try:
        answer = generate(decoder, request).strip()
    except Exception as exc:
        log.warning("verifying event %d failed: %s", row.id, exc)
        return None, None
    verdict = read_answer(answer)
    return (verdict is True), answer[:50]
