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
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from eventvstream.language import scene
from eventvstream.language.matching import terms_in
from eventvstream.language.scene import POSSIBLE_P
from eventvstream.memory.store import EventRow
from eventvstream.perception.vocabulary import everyday_words, roll_up

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
    # how it was filmed or edited ("A cut, the camera pans.") is not what it shows either
    "cut", "cuts", "pan", "pans", "panning", "zoom", "zooms", "zooming", "fade", "fades",
    "dissolve", "transition", "change", "changes", "visual", "gradual",
}  # fmt: skip
_WORD = re.compile(r"[a-z][a-z'-]+")


def problem(caption: str, row: EventRow, examples: Sequence[str] = ()) -> str | None:
    """Why ``caption`` should not be stored for ``row`` ('empty', 'copies an example',
    'numbers', 'says nothing', 'repeats', 'contradicts labels', 'misses what was seen': a
    confident subject the caption does not name, 'contradicts the camera'), or None when fine.
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
    named = terms_in(text)
    for term in named:
        if term not in seen and term not in _ABOUT_FILMING:
            return "contradicts labels"
    main, _ = scene.subject(row.labels)
    if main is not None and not _names(text, named, main):
        return "misses what was seen"
    if _contradicts_camera(set(words), row):
        return "contradicts the camera"
    return None


#: How a caption may say each measured camera motion (``appearance.camera_motion``).
_CAMERA_WORDS = {
    "still": {"still", "static", "steady"},
    "panning": {"pan", "pans", "panning"},
    "zooming": {"zoom", "zooms", "zooming"},
    "fast motion": {"fast", "fast-moving", "rapid", "rapidly", "quickly"},
}


def _contradicts_camera(words: set[str], row: EventRow) -> bool:
    """Whether the caption claims a camera motion other than the one the keyframes measured
    (the 135M model wrote "a still shot" for a fast pan: it copies the look of other turns)."""
    measured = Counter(
        k["look"]["camera"] for k in row.keyframes if (k.get("look") or {}).get("camera")
    )
    if not measured:
        return False
    seen = measured.most_common(1)[0][0]
    claimed = {motion for motion, said in _CAMERA_WORDS.items() if words & said}
    return bool(claimed) and seen not in claimed


def _names(text: str, named: Sequence[str], main: str) -> bool:
    """Whether a caption names the event's confident subject: the class itself, or a word of
    its chain ("a golden retriever" may be called "a dog"; a suit, "a person")."""
    chain = {main, *everyday_words(main)}
    if chain.intersection(named):
        return True
    return re.search(rf"\b{re.escape(main)}", text.lower()) is not None
