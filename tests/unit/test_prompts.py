"""Prompt construction and answer post-processing: pure text, no model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from eventvstream.language import prompts
from eventvstream.language.prompts import (
    CAPTION_SYSTEM,
    MAX_CAPTION_CHARS,
    answer_request,
    caption_request,
    cited_ids,
    clean_caption,
    description,
    evidence_text,
    fallback_caption,
)
from eventvstream.memory.rows import EventRow

SCORES = {
    "semantic": 0.41,
    "motion": 0.2,
    "predictive": 0.33,
    "semantic_norm": 4.1,
    "motion_norm": 1.2,
    "predictive_norm": 2.04,
    "fused": 7.234,
}


def row(
    event_id: int,
    start: float,
    end: float,
    labels: list[list[Any]] | None = None,
    *,
    caption: str | None = None,
    boundaries: dict[str, Any] | None = None,
    stream: str = "cam1",
) -> EventRow:
    return EventRow(
        event_id,  # id
        stream,
        "",  # owner
        None,  # source
        None,  # source_index
        start,
        end,
        4,  # frames
        np.zeros(8, np.float32),  # embedding
        [],  # keyframes
        [["golden retriever", 0.71], ["tennis ball", 0.123]] if labels is None else labels,
        boundaries or {},
        caption,
        None,  # text
        None,  # text_embedding
        0,  # merge_count
        event_id,  # seq
        0.0,  # created
        0.0,  # updated
    )


def cue_boundaries(threshold: float | None = 5.0) -> dict[str, Any]:
    opened = {"t": 4.0, "reason": "cue", "threshold": threshold, "scores": SCORES}
    return {"opened_by": opened, "closed_by": {"t": 9.5, "reason": "cue"}}


# -- caption_request ---------------------------------------------------------------------------
def test_caption_request_is_few_shot_then_the_event() -> None:
    event = row(7, 4.0, 9.5, boundaries=cue_boundaries())
    request = caption_request(event, max_new_tokens=17, temperature=0.3)
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert request.messages[0].content == CAPTION_SYSTEM
    assert request.max_new_tokens == 17 and request.temperature == 0.3
    # two worked examples: perception text in, one plain sentence out
    for user, assistant in zip(request.messages[1:5:2], request.messages[2:5:2], strict=True):
        assert user.content.startswith("Event from ") and user.content.endswith("Caption:")
        assert assistant.content.endswith(".") and "\n" not in assistant.content
    last = request.messages[-1].content
    assert last.startswith("Event from 4.0 s to 9.5 s.\n")
    # the confident label with the everyday words above it; no probabilities or cue scores
    # (the small model copied them: "a nematode (0.09)", "a visual change begins")
    assert "Seen: a golden retriever (a dog, an animal)." in last
    assert "0.71" not in last and "4.1" not in last and "threshold" not in last
    # motion_norm 1.2 is below a cut's: the boundary reads as a gradual change
    assert "It began with a gradual change (a dissolve)." in last
    assert last.endswith("\nCaption:")


def test_how_an_event_began() -> None:
    start = {"opened_by": {"t": 0.0, "reason": "stream_start", "threshold": None, "scores": None}}
    text = caption_request(row(1, 0.0, 3.0, boundaries=start)).messages[-1].content
    assert "began" not in text  # the start of a stream is no transition
    starts = {
        "It began with a cut.": {
            "opened_by": {"reason": "cue", "scores": {**SCORES, "motion_norm": 3.0}}
        },
    }
    for expected, boundaries in starts.items():
        text = caption_request(row(1, 0.0, 3.0, boundaries=boundaries)).messages[-1].content
        assert expected in text
    plain = caption_request(row(1, 0.0, 3.0)).messages[-1].content
    assert "began" not in plain and plain.count("\n") == 2  # span, seen, "Caption:"


def test_unlabelled_or_unsure_content_is_unclear() -> None:
    text = caption_request(row(1, 0.0, 3.0, labels=[])).messages[-1].content
    assert "Seen: unclear content." in text
    unsure = [["nematode", 0.12], ["mink", 0.01]]
    text = caption_request(row(1, 0.0, 3.0, labels=unsure)).messages[-1].content
    assert "Seen: unclear content (maybe nematode)." in text and "mink" not in text


def test_labels_roll_up_to_everyday_words() -> None:
    # no parrot species is confident, but together they are a parrot
    labels = [["sulphur-crested cockatoo", 0.15], ["macaw", 0.1], ["lorikeet", 0.05]]
    text = caption_request(row(1, 0.0, 3.0, labels=labels)).messages[-1].content
    assert "Seen: a parrot (a bird, an animal)." in text


def test_look_words_come_from_the_keyframes() -> None:
    event = row(1, 0.0, 3.0)
    event.keyframes = [
        {"t": 0.5, "look": {"brightness": 0.1, "colour": "blue"}},
        {"t": 1.5, "look": {"brightness": 0.12, "colour": "blue", "camera": "panning"}},
    ]
    text = caption_request(event).messages[-1].content
    assert "Look: very dark, mostly blue, panning." in text


def test_related_events_are_earlier_turns_in_time_order() -> None:
    event = row(9, 30.0, 36.0)
    related = [
        row(5, 20.0, 25.0, [["kitchen stove", 0.6]], caption="A kitchen stove with a pot."),
        row(2, 5.0, 9.0, [["mountain bike", 0.8]], caption="A mountain bike leans on a wall."),
        row(4, 12.0, 15.0, [["fire engine", 0.5]]),  # never captioned: left out
    ]
    messages = caption_request(event, related).messages
    assert [m.role for m in messages] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    history = messages[5:9]
    assert history[0].content.startswith("Event from 5.0 s to 9.0 s.")
    assert "mountain bike" in history[0].content
    assert history[0].content.endswith("\nCaption:")
    assert history[1].content == "A mountain bike leans on a wall."
    assert history[2].content.startswith("Event from 20.0 s to 25.0 s.")
    assert history[3].content == "A kitchen stove with a pot."
    assert all("fire engine" not in m.content for m in messages)
    assert messages[-1].content.startswith("Event from 30.0 s to 36.0 s.")


def test_images_go_with_the_last_user_message_only() -> None:
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(3)]
    related = [row(1, 0.0, 2.0, caption="A dog.")]
    request = caption_request(row(2, 3.0, 6.0), related, images=frames)
    assert all(not m.images for m in request.messages[:-1])
    assert len(request.messages[-1].images) == 3
    assert request.images[2] is frames[2]
    assert caption_request(row(2, 3.0, 6.0)).images == []


# -- clean_caption -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("A dog runs.", "A dog runs."),
        ("  A dog runs.  Then it sleeps.", "A dog runs."),
        ("A dog runs! It barks.", "A dog runs!"),
        ('"A dog runs."', "A dog runs."),
        ("“A dog runs.”", "A dog runs."),
        ('"A dog runs." It barks.', "A dog runs."),
        ("Caption: A dog runs.", "A dog runs."),
        ("caption :  A   dog\truns", "A dog runs"),
        ('Caption: "A dog runs." More', "A dog runs."),
        ("Answer: two cats", "two cats"),
        ("A dog runs on grass\nEvent from 10.0 s to 12.0 s.", "A dog runs on grass"),
        ("\n\nCaption:\n A cat sits.", "A cat sits."),
        ('He said "stop." Then left.', 'He said "stop."'),
        ('The sign says "stop"', 'The sign says "stop"'),
        ("", ""),
        ("  \n\t ", ""),
        ('"', ""),
    ],
)
def test_clean_caption(raw: str, clean: str) -> None:
    assert clean_caption(raw) == clean


def test_clean_caption_caps_length_on_a_word() -> None:
    long = clean_caption("word " * 100)
    assert len(long) <= MAX_CAPTION_CHARS and long.endswith("word…")
    unbroken = clean_caption("x" * 500)
    assert len(unbroken) <= MAX_CAPTION_CHARS and unbroken.endswith("…")


# -- fallback, description, evidence -----------------------------------------------------------
def test_fallback_caption_is_the_templated_description() -> None:
    labels = [["tabby cat", 0.5], ["tennis ball", 0.3], ["lawn mower", 0.05]]
    assert (
        fallback_caption(row(1, 0, 1, labels))
        == "A tabby cat (a cat, an animal) with a tennis ball."
    )
    assert fallback_caption(row(1, 0, 1, [])) == "Unclear content."


def test_description_carries_the_everyday_words() -> None:
    event = row(1, 0.0, 1.0)
    assert description("A dog plays.", event) == (
        "A dog plays. Seen: golden retriever, dog, animal, mammal, tennis ball, ball."
    )
    assert description(None, event).startswith("Seen: golden retriever, dog")
    assert description("A dog plays.", row(1, 0, 1, [])) == "A dog plays."
    assert description(None, row(1, 0, 1, [])) == "a video event"


def test_evidence_text_lists_ids_and_spans() -> None:
    events = [row(12, 4.0, 9.5, caption="A dog plays."), row(13, 9.5, 12.25, [["cat", 0.4]])]
    lines = evidence_text(events).splitlines()
    assert lines == [
        "[#12] cam1, 4.0 s to 9.5 s: A dog plays.",
        "[#13] cam1, 9.5 s to 12.2 s: A cat.",
    ]


def test_answer_request() -> None:
    events = [row(3, 0.0, 2.0, caption="A dog.")]
    request = answer_request("what happened?", events, framing="Be brief.", max_new_tokens=9)
    assert [m.role for m in request.messages] == ["system", "user"]
    body = request.messages[1].content
    assert "[#3] cam1, 0.0 s to 2.0 s: A dog." in body
    assert "Be brief.\nQuestion: what happened?" in body
    assert request.max_new_tokens == 9


# -- citations ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("A dog [#12] then a cat [#3].", [12, 3]),
        ("see [12] and [ #4 ]", [12, 4]),
        ("events #12, #13 and #12 again [#13]", [12, 13]),
        ("[#7][7] #7", [7]),
        ("[#12, #13]", [12, 13]),
        ("no citations at 12:30", []),
        ("", []),
    ],
)
def test_cited_ids(text: str, ids: list[int]) -> None:
    assert cited_ids(text) == ids


def test_span_format() -> None:
    assert prompts.span(0, 61.25) == "0.0 s to 61.2 s"
