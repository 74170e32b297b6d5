"""Is a decoder's caption fit to store? Checks made before it enters memory.

The packaged 135M decoder, given labels, often writes sentences that are worse than no caption:
"A pig is a pig." (repeats itself), "A nematode (0.09) is eaten..." (echoes numbers from the
prompt), "A snoek fish is used to launch a tank." (names what the labels do not support). A
caption that fails is retried once (sampling instead of greedy) and otherwise replaced by the
templated description of :mod:`eventvstream.language.scene`; the caption worker counts both.

When perception saw something with confidence, a caption must name it (the thing or a word
above it): the 135M model, told "Seen: a bow tie (clothing, a person)", still wrote "A cut, the
camera pans." or copied the prompt's lines. Such a caption is replaced by the templated one,
which names what was seen; words about the filming or the edit alone say nothing.

And a text-only decoder's caption may name only what it was told ("A parrot sits on a branch"
for a cockatoo invents the branch and the sitting): the content check of
:func:`eventvstream.language.grounding.invented_content`, the same one phrased answers pass. A
vision-language model saw the keyframes, so its captions may name more than the labels; for it
only the vocabulary check ("contradicts labels") applies.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from eventvstream.language import scene
from eventvstream.language.grounding import INVENTED, evidence, invented_content
from eventvstream.language.lexicon import CAMERA_WORDS, FILMING_WORDS
from eventvstream.language.matching import terms_in
from eventvstream.language.scene import POSSIBLE_P
from eventvstream.memory.store import EventRow
from eventvstream.perception.vocabulary import everyday_words, roll_up

_STOP = {
    "a", "an", "the", "is", "are", "was", "of", "on", "in", "at", "with", "and", "to", "by",
    "its", "it", "this", "that", "from", "into", "over", "for", "as", "be", "being", "some",
}  # fmt: skip
#: Words that describe the recording, not what is in it: a caption of only these says nothing
#: ("The beginning of the video.", "A cut, the camera pans.").
_ABOUT_VIDEO = FILMING_WORDS | {
    "beginning", "start", "end", "begins", "starts", "ends", "shows", "showing",
}  # fmt: skip
_WORD = re.compile(r"[a-z][a-z'-]+")


def problem(
    caption: str, row: EventRow, examples: Sequence[str] = (), *, check_content: bool = True
) -> str | None:
    """Why ``caption`` should not be stored for ``row`` ('empty', 'copies an example',
    'numbers', 'says nothing', 'repeats', 'contradicts labels', 'misses what was seen': a
    confident subject the caption does not name, 'contradicts the camera', and with
    ``check_content`` ``grounding.INVENTED``: a word that is neither in what the decoder was
    told nor frame), or None when fine. ``examples`` are the prompt's worked answers, which a
    small model copies when it has nothing to say. ``check_content`` is off for a decoder that
    saw the keyframes."""
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
    named = terms_in(text)
    for term in named:
        if term not in seen and term not in FILMING_WORDS:
            return "contradicts labels"
    main, _ = scene.subject(row.labels)
    if main is not None and not _names(text, named, main):
        return "misses what was seen"
    if _contradicts_camera(set(words), row):
        return "contradicts the camera"
    if check_content and invented_content(text, evidence([row], captions=False)):
        return INVENTED
    return None


def _contradicts_camera(words: set[str], row: EventRow) -> bool:
    """Whether the caption claims a camera motion other than the one the keyframes measured
    (the 135M model wrote "a still shot" for a fast pan: it copies the look of other turns)."""
    measured = Counter(
        k["look"]["camera"] for k in row.keyframes if (k.get("look") or {}).get("camera")
    )
    if not measured:
        return False
    seen = measured.most_common(1)[0][0]
    claimed = {motion for motion, said in CAMERA_WORDS.items() if words & said}
    return bool(claimed) and seen not in claimed


def _names(text: str, named: Sequence[str], main: str) -> bool:
    """Whether a caption names the event's confident subject: the class itself, or a word of
    its chain ("a golden retriever" may be called "a dog"; a suit, "a person")."""
    chain = {main, *everyday_words(main)}
    if chain.intersection(named):
        return True
    return re.search(rf"\b{re.escape(main)}", text.lower()) is not None
