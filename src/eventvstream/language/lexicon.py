"""The words a decoder may use without evidence, and a simple lemmatiser (no model, no WordNet).

The content check (:func:`eventvstream.language.grounding.invented_content`) lets a phrased
answer or a caption name only what its evidence names. Everything else in a sentence has to be
*frame*: grammar (articles, pronouns, prepositions, auxiliaries, quantities), the words an
answer about a video is built from ("saw", "appeared", "event", "most recently"), and words
about the filming itself ("the camera", "a shot"). Those lists are closed and short on purpose:
a word that is neither frame nor evidence ("malfunction", "electrical", "branch", "riding")
makes the phrasing fall back to the template. A missing frame word costs a phrasing (the
template is always right); a frame word that names a thing would let an invention through, so
no noun of things goes here.

The lemmatiser only strips English endings ("bikes", "riding", "parked", "quickly") and knows a
few irregular forms; two words are the same when their candidate stems meet.
"""

from __future__ import annotations

import re
from functools import lru_cache


def _closed(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Grammar: says nothing about what is on screen.
FUNCTION_WORDS = _closed(
    """
a an the this that these those there here it its they them their theirs he him his she her
hers we us our ours you your yours i me my mine one ones someone somebody something anything
nothing everything anyone everyone none some any no not nor never all both each every either
neither other others another such same own only just also too very quite rather almost mostly
mainly partly more most less least much many few several lot lots and or but so yet if then
than because as while when whenever where which who whom whose what whatever how why whether
of in on at by for with without within from to into onto over under above below between among
through throughout during before after since until till up down out off about around across
along near nearby beside behind toward towards against upon via per inside outside
be am is are was were been being have has had having do does did done doing will would shall
should can could may might must let lets
yes ever always often sometimes once twice again still even already soon now later earlier
recently currently today meanwhile ago right then next previous following later latest
zero two three four five six seven eight nine ten eleven twelve first second third
"""
)

#: The frame of an answer about a video: what was seen, when, how sure.
ANSWER_WORDS = _closed(
    """
see saw seen sees seeing spot spotted notice noticed observe observed detect detected capture
captured record recorded show shows showed shown showing appear appeared appears appearing
appearance appearances visible present presence absent occur occurred occurs occurring happen
happened happens happening take took place go going went gone on continue continues continued
continuing ongoing remain remained stay stayed last lasted lasting begin began begins beginning
begun start started starts starting end ended ends ending finish finished
event events moment moments time times period periods span part parts segment section instance
instances occasion occasions sighting sightings total count counted number
recent recently most earliest final last latest whole entire overall
answer question memory evidence log listed cited mentioned according correct based given
provided information identified described description include includes included including
available approximately roughly pm utc indeed specifically exactly mention mentions use used
cannot possible impossible determine solely say said
sure unsure certain tell told unclear clear clearly unknown maybe possibly perhaps probably
likely seems seemed seem look looks looked like similar kind sort type
thing things object objects content
second seconds sec secs minute minutes min mins hour hours hr hrs s m h
"""
)

#: The recording and its editing, not what it shows ("the camera pans", "a cut").
FILMING_WORDS = _closed(
    """
video scene shot clip camera frame frames image picture footage view screen stream recording
cut cuts pan pans panning zoom zooms zooming fade fades dissolve transition change changes
visual gradual
"""
)

_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "leaves": "leaf", "knives": "knife",
    "ran": "run", "rode": "ride", "ridden": "ride", "drove": "drive", "driven": "drive",
    "flew": "fly", "flown": "fly", "sat": "sit", "stood": "stand", "swam": "swim",
    "ate": "eat", "eaten": "eat", "fell": "fall", "fallen": "fall", "held": "hold",
    "wore": "wear", "worn": "wear", "lit": "light", "left": "leave", "made": "make",
    "gray": "grey", "color": "colour", "colored": "coloured",
}  # fmt: skip
_WORD = re.compile(r"[a-z]+(?:['’-][a-z]+)*")
_NOT = {"don", "isn", "wasn", "aren", "weren", "didn", "doesn", "hasn", "haven", "couldn"}


def word_spans(text: str) -> list[tuple[int, str]]:
    """(position, word) for the words of lower-cased ``text``: possessives and "n't" dropped
    ("vehicle's" -> "vehicle"), hyphenated words whole ("fast-moving")."""
    out = []
    for match in _WORD.finditer(text):
        word = re.sub(r"['’](s|t|re|ve|ll|d|m)$", "", match.group())
        if word.endswith("n") and word in _NOT:
            word = word[:-1]
        out.append((match.start(), word))
    return out


def words(text: str) -> list[str]:
    """The words of ``text`` (see :func:`word_spans`), lower-cased."""
    return [word for _, word in word_spans(text.lower())]


@lru_cache(maxsize=65536)
def stems(word: str) -> frozenset[str]:
    """Candidate stems of a word: itself, and without a plural, -ing, -ed or -ly ending.
    "riding" and "rides" share "ride"; "bikes" and "bike" share "bike"."""
    found = {word, _IRREGULAR.get(word, word)}
    n = len(word)
    if n > 4 and word.endswith("ies"):
        found.add(word[:-3] + "y")
    if n > 3 and word.endswith("es"):
        found.add(word[:-2])
    if n > 3 and word.endswith("s") and not word.endswith("ss"):
        found.add(word[:-1])
    for ending in ("ing", "ed"):
        if n > len(ending) + 2 and word.endswith(ending):
            stem = word[: -len(ending)]
            found |= {stem, stem + "e"}
            if len(stem) > 2 and stem[-1] == stem[-2]:  # "running" -> "run"
                found.add(stem[:-1])
            if ending == "ed" and stem.endswith("i"):  # "carried" -> "carry"
                found.add(stem[:-1] + "y")
    if n > 4 and word.endswith("ly"):
        found.add(word[:-2])
    return frozenset(found)


def frame(word: str) -> bool:
    """Whether ``word`` is grammar, answer frame or about the filming (needs no evidence)."""
    if word in FUNCTION_WORDS or word in ANSWER_WORDS or word in FILMING_WORDS:
        return True
    return any(s in ANSWER_WORDS or s in FILMING_WORDS for s in stems(word))


#: How a sentence may say each measured camera motion (``appearance.camera_motion``).
CAMERA_WORDS = {
    "still": frozenset({"still", "static", "steady"}),
    "panning": frozenset({"pan", "pans", "panning"}),
    "zooming": frozenset({"zoom", "zooms", "zooming"}),
    "fast motion": frozenset({"fast", "fast-moving", "rapid", "rapidly", "quickly"}),
}
