"""Is a decoder's caption fit to store? Checks made before it enters memory.

The packaged 135M decoder, given labels, often writes sentences that are worse than no caption:
"A pig is a pig." (repeats itself), "A nematode (0.09) is eaten..." (echoes numbers from the
prompt), "A snoek fish is used to launch a tank." (names what the labels do not support). A
caption that fails is retried once (sampling instead of greedy) and otherwise replaced by the
templated description of :mod:`eventvstream.language.scene`; the caption worker counts both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from eventvstream.language.matching import terms_in
from eventvstream.language.scene import POSSIBLE_P
from eventvstream.memory.store import EventRow
from eventvstream.perception.vocabulary import roll_up

_STOP = {
    "a", "an", "the", "is", "are", "was", "of", "on", "in", "at", "with", "and", "to", "by",
    "its", "it", "this", "that", "from", "into", "over", "for", "as", "be", "being", "some",
}  # fmt: skip
#: Vocabulary words a caption may use about the filming itself ("the camera pans").
_ABOUT_FILMING = {"camera", "screen"}
#: Words that describe the recording, not what is in it: a caption of only these says nothing
#: ("The beginning of the video.").
_ABOUT_VIDEO = {
    "video", "beginning", "start", "end", "scene", "shot", "clip", "camera", "frame", "image",
    "picture", "footage", "view", "begins", "starts", "ends", "shows", "showing",
}  # fmt: skip
_WORD = re.compile(r"[a-z][a-z'-]+")


def problem(caption: str, row: EventRow, examples: Sequence[str] = ()) -> str | None:
    """Why ``caption`` should not be stored for ``row`` ('empty', 'copies an example',
    'numbers', 'says nothing', 'repeats', 'contradicts labels'), or None when it is fine.
    ``examples`` are the prompt's worked answers, which a small model copies when it has
    nothing to say."""
    text = caption.strip()
    words = _WORD.findall(text.lower())
    if not words:
        return "empty"
    for example in examples:
        shared = set(_WORD.findall(example.lower())) - _STOP
        if shared and len(shared & set(words)) >= 0.6 * len(shared):
            return "copies an example"
    if re.search(r"\d", text):
        return "numbers"
    if not [w for w in words if w not in _STOP and w not in _ABOUT_VIDEO and len(w) > 2]:
        return "says nothing"
    content = Counter(w for w in words if w not in _STOP and len(w) > 2)
    if content and content.most_common(1)[0][1] >= 2:
        return "repeats"
    seen = {word for word, p in roll_up(row.labels) if p >= POSSIBLE_P}
    for term in terms_in(text):
        if term not in seen and term not in _ABOUT_FILMING:
            return "contradicts labels"
    return None
