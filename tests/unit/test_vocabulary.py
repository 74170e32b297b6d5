"""Everyday words over ImageNet classes (the committed WordNet roll-up) and the look of frames."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.perception.appearance import brightness_word, camera_motion, look_of
from eventvstream.perception.labels import imagenet_labels
from eventvstream.perception.vocabulary import (
    confident_words,
    everyday_words,
    roll_up,
    vocabulary,
)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("sulphur-crested cockatoo", ("parrot", "bird", "animal")),
        ("minivan", ("car",)),
        ("Golden Retriever", ("dog", "animal")),
        ("mountain bike", ("bicycle", "vehicle")),
        ("hare", ("rabbit", "mammal")),
        ("volcano", ("mountain",)),
        ("sweatshirt", ("clothing", "person")),  # worn things imply a person
    ],
)
def test_everyday_words_follow_wordnet(name: str, words: tuple[str, ...]) -> None:
    chain = everyday_words(name)
    positions = [chain.index(w) for w in words]  # all present, nearest first
    assert positions == sorted(positions)


def test_every_class_has_a_row_and_most_have_words() -> None:
    names = imagenet_labels()
    covered = sum(bool(everyday_words(n)) for n in names)
    assert covered > 800  # the rest (abacus, sundial...) have no everyday word above them
    assert everyday_words("no such class") == ()
    assert {"bird", "car", "dog", "person", "sulphur-crested cockatoo"} <= vocabulary()


def test_roll_up_sums_uncertain_species_into_a_confident_word() -> None:
    rolled = dict(roll_up([["sulphur-crested cockatoo", 0.2], ["macaw", 0.15], ["tabby cat", 0.1]]))
    assert rolled["parrot"] == pytest.approx(0.35)
    assert rolled["bird"] == pytest.approx(0.35)
    assert rolled["animal"] == pytest.approx(0.45)
    assert rolled["macaw"] == pytest.approx(0.15)  # the class itself, lower-cased
    assert confident_words([["sulphur-crested cockatoo", 0.2], ["macaw", 0.15]]) == [
        "parrot",
        "bird",
        "animal",
    ]


def _frame(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (48, 64, 1))


def test_look_of_a_frame() -> None:
    assert look_of(_frame((20, 40, 200)))["colour"] == "blue"
    assert look_of(_frame((30, 180, 40)))["colour"] == "green"
    assert look_of(_frame((128, 128, 128)))["colour"] == "grey"
    assert look_of(_frame((10, 10, 10)))["brightness"] < 0.05
    assert brightness_word(0.05) == "very dark" and brightness_word(0.5) is None
    assert brightness_word(0.9) == "bright"


def test_camera_motion() -> None:
    rng = np.random.default_rng(0)
    # a smooth random texture (blocky noise) so shifts and scales are measurable
    base = np.kron(rng.integers(0, 255, (24, 32, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    assert camera_motion(base, base) == "still"
    panned = np.roll(base, 24, axis=1)
    assert camera_motion(base, panned) == "panning"
    other = np.kron(rng.integers(0, 255, (24, 32, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    assert camera_motion(base, other) == "fast motion"
