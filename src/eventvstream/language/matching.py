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
from eventvstream.perception.vocabulary import CONFIDENT_P, everyday_words, roll_up, vocabulary

#: Words people use for a vocabulary term that WordNet's everyday words do not include.
SYNONYMS = {
    "person": ("people", "man", "men", "woman", "women", "someone", "somebody", "anyone",
               "anybody", "human", "humans", "pedestrian", "child", "children", "kid", "boy",
               "girl", "guy", "lady", "driver"),
    "bicycle": ("bike", "bikes", "cyclist", "cyclists"),
    "rabbit": ("bunny", "bunnies"),
    "car": ("automobile",),
    "airplane": ("plane", "planes", "aeroplane"),
    "cat": ("kitten", "kitty"),
    "dog": ("puppy", "puppies"),
}  # fmt: skip


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Every vocabulary term (and synonym) with a whole-word pattern that takes a plural."""
    names = [(t, t) for t in vocabulary()]
    names += [(word, term) for term, words in SYNONYMS.items() for word in words]
    names.sort(key=lambda pair: len(pair[0]), reverse=True)
    return [(term, re.compile(rf"\b{re.escape(w.lower())}(?:s|es)?\b")) for w, term in names]


def term_spans(text: str) -> list[tuple[int, int, str]]:
    """Every place ``text`` names a vocabulary term: (start, end, term), in the order written,
    longest names first ("mountain bike" is one term, not also "bike")."""
    text = text.lower()
    found: list[tuple[int, int, str]] = []
    for term, pattern in _patterns():
        matches = list(pattern.finditer(text))
        if matches:
            found += [(match.start(), match.end(), term) for match in matches]
            text = pattern.sub(lambda m: " " * (m.end() - m.start()), text)
    return sorted(found)


def terms_in(topic: str) -> list[str]:
    """Vocabulary terms named in ``topic``, in the order written, without ones inside a longer
    one ("mountain bike" not also "bike"); the first is what the question is about ("a man in
    a car" is about a person)."""
    return list(dict.fromkeys(term for _, _, term in term_spans(topic)))


#: Words of a topic that need no checking: articles, prepositions, quantities.
_GLUE = {"a", "an", "the", "in", "on", "of", "with", "at", "by", "and", "or", "any", "some",
         "there", "its", "his", "her", "their", "into", "from", "near", "inside", "one", "two",
         "several", "many", "few", "other", "another", "same"}  # fmt: skip


def unchecked_words(topic: str) -> list[str]:
    """Words of ``topic`` that perception cannot check, besides its vocabulary terms and glue:
    "walking" in "people walking", "cartoon" in "a cartoon woman", "red" in "a red car". The
    labels say a person or a car was seen, never how it looked or what it did, so an answer
    found through the term says it could not tell the rest."""
    text = topic.lower()
    for _term, pattern in _patterns():
        text = pattern.sub(" ", text)
    return [w for w in re.findall(r"[a-z][a-z'-]*", text) if w not in _GLUE]


def subject_term(topic: str) -> str | None:
    """The vocabulary term a topic is about (its first), or None."""
    terms = terms_in(topic)
    return terms[0] if terms else None


@lru_cache(maxsize=4096)
def broader(term: str) -> tuple[str, ...]:
    """The everyday words above ``term``, nearest first ("rabbit" -> mammal, animal): from the
    class's own chain, or for an everyday word from the chains it appears in."""
    chain = everyday_words(term)
    if chain:
        return chain
    above: dict[str, int] = {}
    for name in vocabulary():
        words = everyday_words(name)
        if term in words:
            for distance, word in enumerate(words[words.index(term) + 1 :]):
                above[word] = min(above.get(word, 99), distance)
    return tuple(sorted(above, key=lambda w: above[w]))


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

    def scores(
        self, topic: str, rows: Sequence[EventRow], threshold: float | None = None
    ) -> list[float]:
        """A match score per row; a row matches when its score is >= 0 (scores above zero
        rank better). Lexical scores are the probability margin over ``min_p``; similarity
        scores the margin over the threshold."""
        term = subject_term(topic)
        if term:
            return [term_probability(row, [term]) - self.min_p for row in rows]
        if not rows:
            return []
        query = np.asarray(self.embed([topic]))[0]  # type: ignore[operator]
        out = []
        for row in rows:
            vector = row.text_embedding
            similarity = float(np.dot(vector, query)) if vector is not None else -1.0
            out.append(similarity - (self.threshold if threshold is None else threshold))
        return out

    def matches(
        self, topic: str, rows: Sequence[EventRow], threshold: float | None = None
    ) -> list[tuple[EventRow, float]]:
        """The rows that show ``topic``, with their scores; ``threshold`` overrides the
        similarity needed for things outside the vocabulary (a looser one for plain search)."""
        scored = zip(rows, self.scores(topic, rows, threshold), strict=True)
        return [(r, s) for r, s in scored if s >= 0]


def known(topic: str) -> bool:
    """Whether ``topic`` names something in the classifier's vocabulary."""
    return bool(terms_in(topic))
