"""What an event shows, in words, from what perception measured (no model).

Three users: the decoder's perception text (what a text-only LLM is told), the templated
description an event gets when its caption is missing or fails the checks, and the answerer,
which decides from the same numbers whether an event shows "a bird". One place, so the three
never disagree.

The content comes from labels pooled over the event's frames and rolled up to everyday words
(:mod:`eventvstream.perception.vocabulary`); what nothing reaches ``CONFIDENT_P`` for is called
unclear rather than named. The look comes from the keyframes (brightness, colour, camera
motion) and how the event began from its opening boundary (a cut, a fade, a gradual change).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from eventvstream.memory.store import EventRow
from eventvstream.perception.appearance import brightness_word
from eventvstream.perception.vocabulary import CONFIDENT_P, everyday_words, roll_up

#: Labels at least this likely are mentioned as "maybe" when nothing is confident.
POSSIBLE_P = 0.1


def subject(labels: Sequence[Sequence[Any]]) -> tuple[str | None, list[str]]:
    """The most specific thing seen with confidence, and the more general words above it.

    Walks the top label's chain (its name, then its everyday words) and stops at the first
    term whose pooled probability reaches ``CONFIDENT_P``: 0.6 cockatoo is "sulphur-crested
    cockatoo (parrot, bird)", 0.2 cockatoo + 0.2 macaw is "parrot (bird)".
    """
    totals = dict(roll_up(labels))
    for name, *_ in labels:
        chain = [str(name).lower(), *everyday_words(str(name))]
        for i, term in enumerate(chain):
            if totals.get(term, 0.0) >= CONFIDENT_P:
                return term, [w for w in chain[i + 1 : i + 3] if w != term]
    return None, []


def others(labels: Sequence[Sequence[Any]], main: str | None, general: list[str]) -> list[str]:
    """Other confident things (a person *and* a bicycle), not words of the subject's chain."""
    skip = {main, *general}
    if main:
        skip |= set(everyday_words(main))
    found: list[str] = []
    for name, p, *_ in labels:
        name = str(name).lower()
        if float(p) < CONFIDENT_P or name in skip:
            continue
        if skip.intersection(everyday_words(name)):
            continue
        found.append(name)
    return found[:2]


def look_words(row: EventRow) -> list[str]:
    """Brightness, colour and camera motion, as words (majority over the keyframes)."""
    looks = [k.get("look") or {} for k in row.keyframes]
    words: list[str] = []
    levels = [float(look["brightness"]) for look in looks if "brightness" in look]
    if levels:
        word = brightness_word(sum(levels) / len(levels))
        if word:
            words.append(word)
    colours = Counter(look["colour"] for look in looks if look.get("colour"))
    if colours:
        colour = colours.most_common(1)[0][0]
        words.append("mostly grey" if colour == "grey" else f"mostly {colour}")
    cameras = Counter(look["camera"] for look in looks if look.get("camera"))
    if cameras:
        camera = cameras.most_common(1)[0][0]
        words.append({"still": "a still shot", "fast motion": "fast motion"}.get(camera, camera))
    return words


def transition(row: EventRow) -> str | None:
    """How the event began: a cut, a fade (from dark) or a gradual change (a dissolve)."""
    opened = row.boundaries.get("opened_by") or {}
    # (The start of the stream is no transition; told "it began with the start of the video",
    # the 135M model captioned every later event "The beginning of the video.")
    if opened.get("reason") != "cue":
        return None
    looks = [k.get("look") or {} for k in row.keyframes]
    if looks and float(looks[0].get("brightness", 1.0)) < 0.1:
        return "a fade"
    scores = opened.get("scores") or {}
    if float(scores.get("motion_norm", 0.0)) >= 1.5:
        return "a cut"
    return "a gradual change (a dissolve)"


def content_text(labels: Sequence[Sequence[Any]]) -> str:
    """'a sulphur-crested cockatoo (a parrot, a bird)', or 'unclear content (maybe a ...)'."""
    main, general = subject(labels)
    if main is None:
        maybe = [str(n) for n, p, *_ in labels[:2] if float(p) >= POSSIBLE_P]
        return "unclear content" + (f" (maybe {' or '.join(maybe)})" if maybe else "")
    text = _article(main)
    if general:
        text += " (" + ", ".join(_article(w) for w in general) + ")"
    extra = others(labels, main, general)
    if extra:
        text += " with " + " and ".join(_article(w) for w in extra)
    return text


def describe(row: EventRow) -> str:
    """A one-sentence templated description: what is seen, then how it looks."""
    text = content_text(row.labels)
    words = look_words(row)
    sentence = text[0].upper() + text[1:]
    if words:
        sentence += "; " + ", ".join(words)
    return sentence + "."


def perception_lines(row: EventRow) -> list[str]:
    """The lines a text-only decoder reads about an event (besides its time span)."""
    lines = [f"Seen: {content_text(row.labels)}."]
    words = look_words(row)
    if words:
        lines.append("Look: " + ", ".join(words) + ".")
    began = transition(row)
    if began:
        lines.append(f"It began with {began}.")
    return lines


def index_words(labels: Sequence[Sequence[Any]], min_p: float = POSSIBLE_P) -> list[str]:
    """Labels and everyday words likely enough to be worth finding the event by."""
    return [w for w, p in roll_up(labels) if p >= min_p][:12]


_VOWEL = re.compile(r"^[aeiou]", re.I)
#: Spelled with a vowel, said with a consonant ("a unicycle", "a one-way street"), and the reverse.
_SAID_CONSONANT = re.compile(
    r"^(uni|use|usu|uti|ure|eu|ewe|one|once|u[bcdfgklmnprstvz][aeiou])", re.I
)
_SAID_VOWEL = re.compile(r"^(hour|honest|honou?r|heir)", re.I)


def indefinite_article(word: str) -> str:
    """'a' or 'an' for ``word`` by how it is said, as far as spelling tells ("an animal",
    "a unicycle", "an hour"). The one place answers, captions and hedges get their article."""
    if _SAID_VOWEL.match(word):
        return "an"
    if _SAID_CONSONANT.match(word):
        return "a"
    return "an" if _VOWEL.match(word) else "a"


def _article(word: str) -> str:
    if word in {"clothing", "food", "furniture", "cattle", "sports equipment", "landscape"}:
        return word
    return f"{indefinite_article(word)} {word}"
