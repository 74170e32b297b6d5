"""Does this event show what the question asks about? Words first, then sentence similarity.

Counting, "first", "last" and "did we see X?" need a yes/no per event over *every* event in
scope, not the top few of a similarity search: a wrong yes invents a sighting, a wrong no hides
one. When the question names something the classifier's vocabulary knows (an ImageNet class or
an everyday word above one: "bird", "car", "mountain bike"), the decision is made on the event's
pooled labels rolled up to those words, at the same confidence the descriptions use
(``CONFIDENT_P``). Only for things outside that vocabulary ("a person walking", "a tree") does
sentence similarity between the question and the event's description decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from eventvstream.memory.store import EventRow
from eventvstream.perception.vocabulary import CONFIDENT_P, roll_up, vocabulary


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Every vocabulary term with a whole-word pattern that also takes a plural."""
    terms = sorted(vocabulary(), key=len, reverse=True)
    return [(t, re.compile(rf"\b{re.escape(t.lower())}(?:s|es)?\b")) for t in terms]


def terms_in(topic: str) -> list[str]:
    """Vocabulary terms named in ``topic``, longest first, without ones inside a longer one
    ("mountain bike" not also "bike"... "sports car" keeps "sports car" only)."""
    text = topic.lower()
    found: list[str] = []
    for term, pattern in _patterns():
        match = pattern.search(text)
        if match:
            found.append(term)
            text = text[: match.start()] + " " + text[match.end() :]
    return found


def term_probability(row: EventRow, terms: Sequence[str]) -> float:
    """The highest pooled probability of any of ``terms`` in the event (0 if none)."""
    totals = dict(roll_up(row.labels))
    return max((totals.get(t, 0.0) for t in terms), default=0.0)


class Matcher:
    """Decides, per event, whether it shows a topic; see the module docstring."""

    def __init__(self, embed: object, threshold: float, min_p: float = CONFIDENT_P) -> None:
        self.embed = embed  # callable: list[str] -> (n, d) unit vectors
        self.threshold = threshold
        self.min_p = min_p

    def scores(self, topic: str, rows: Sequence[EventRow]) -> list[float]:
        """A match score per row; a row matches when its score is >= 0 (scores above zero
        rank better). Lexical scores are the probability margin over ``min_p``; similarity
        scores the margin over the threshold."""
        terms = terms_in(topic)
        if terms:
            return [term_probability(row, terms) - self.min_p for row in rows]
        if not rows:
            return []
        query = np.asarray(self.embed([topic]))[0]  # type: ignore[operator]
        out = []
        for row in rows:
            vector = row.text_embedding
            similarity = float(np.dot(vector, query)) if vector is not None else -1.0
            out.append(similarity - self.threshold)
        return out

    def matches(self, topic: str, rows: Sequence[EventRow]) -> list[tuple[EventRow, float]]:
        return [(r, s) for r, s in zip(rows, self.scores(topic, rows), strict=True) if s >= 0]


def known(topic: str) -> bool:
    """Whether ``topic`` names something in the classifier's vocabulary."""
    return bool(terms_in(topic))
