"""ImageNet class names -> the everyday words people use for them ("cockatoo" -> parrot, bird).

The classifier's 1000 classes are fine-grained ("sulphur-crested cockatoo", "minivan"), so a
question about "a bird" or "a car" found nothing: the everyday word never reached the event's
text. ``imagenet_words.tsv`` holds, per class, its WordNet hypernyms that are everyday words,
nearest first; ``scripts/make_imagenet_words.py`` generated it from WordNet 3.0, so the runtime
needs no WordNet.

Rolling up also fixes a confidence problem: a frame at 0.3 cockatoo, 0.2 macaw and 0.1 lorikeet
names no class with confidence, but it is a parrot (and a bird) at 0.6. :func:`roll_up` sums
label probabilities into everyday words, which is how an event's content is told to the decoder
and indexed for search; content that no word reaches ``min_p`` for is called unclear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

#: Below this pooled probability a label or word is not stated as seen.
CONFIDENT_P = 0.25
#: Classes of things worn imply a person (ImageNet has no "person" class; people come out as
#: "suit", "jersey", "sweatshirt"...), so those rolled-up words also count toward "person".
_IMPLIES_PERSON = {"clothing", "hat", "shoe", "helmet"}


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, ...]]:
    text = (resources.files("eventvstream.perception") / "imagenet_words.tsv").read_text("utf-8")
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        _index, _wnid, name, words = line.split("\t")
        chain = tuple(w for w in words.split("|") if w)
        name = name.lower()  # open_clip writes "Golden Retriever"; callers may not
        if name in table:  # two classes share a name ("missile"): keep both chains
            chain = table[name] + tuple(w for w in chain if w not in table[name])
        table[name] = chain
    return table


def everyday_words(name: str) -> tuple[str, ...]:
    """The everyday words above an ImageNet class name, nearest first (empty if unknown)."""
    chain = _table().get(name.lower(), ())
    if _IMPLIES_PERSON.intersection(chain) and "person" not in chain:
        chain = (*chain, "person")
    return chain


def roll_up(labels: Iterable[Sequence[Any]]) -> list[tuple[str, float]]:
    """Everyday words with the summed probability of the labels under them, most likely first.

    A label's own name counts too (lower-cased, as words in a sentence), so "pig" stays "pig"
    when it has no more general word.
    """
    totals: dict[str, float] = {}
    for name, p, *_ in labels:
        name = str(name).lower()
        for word in dict.fromkeys((name, *everyday_words(name))):
            totals[word] = totals.get(word, 0.0) + float(p)
    return sorted(((w, min(1.0, p)) for w, p in totals.items()), key=lambda item: -item[1])


def confident_words(labels: Iterable[Sequence[Any]], min_p: float = CONFIDENT_P) -> list[str]:
    """Everyday words (and class names) seen with at least ``min_p`` pooled probability."""
    return [word for word, p in roll_up(labels) if p >= min_p]


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Every class name and everyday word (what :func:`roll_up` can name)."""
    words = set(_table())
    for chain in _table().values():
        words.update(chain)
    return frozenset(words | {"person"})
