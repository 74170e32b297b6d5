"""Grounded answers without a model: the time check, the templates, summaries, caption checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from eventvstream.language import answers, caption_check, summary
from eventvstream.language.grounding import (
    INVENTED,
    clock,
    invented_times,
    span,
    stated_times,
    stray_numbers,
)
from eventvstream.language.intent import Intent
from eventvstream.language.matching import unchecked_words
from eventvstream.memory.store import EventRow


def row(
    event_id: int,
    start: float,
    end: float,
    labels: list[list[Any]] | None = None,
    caption: str | None = None,
) -> EventRow:
    return EventRow(
        event_id, "cam1", "", None, None, start, end, 4, np.zeros(8, np.float32), [],
        [["sulphur-crested cockatoo", 0.6]] if labels is None else labels,
        {}, caption, None, None, 0, event_id, 0.0, 0.0,
    )  # fmt: skip


# -- times -------------------------------------------------------------------------------------
def test_clock_and_span() -> None:
    assert clock(4.84) == "4.8 s"
    assert clock(61.4) == "1:01"
    assert clock(3725) == "1:02:05"
    assert span(4.8, 7.3) == "4.8 s to 7.3 s"


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("between 0:03 and 0:10", [3.0, 10.0]),
        ("from 4.8 s to 7.3 s [#6]", [4.8, 7.3]),
        ("at 1:02:05, then 2 minutes later", [3725.0, 120.0]),
        ("it happened 3 times", []),  # a count is not a time
        ("event [#12] and #13", []),
    ],
)
def test_stated_times(text: str, times: list[float]) -> None:
    assert stated_times(text) == pytest.approx(times)


def test_invented_times_are_caught() -> None:
    bike = row(6, 4.8, 7.3)
    # the example: an event at 4.8-7.3 s described as "between 0:03 and 0:10"
    assert invented_times("the biking occurred between 0:03 and 0:10 [#6]", [bike]) == [3.0, 10.0]
    assert invented_times("from 4.8 s to 7.3 s [#6]", [bike]) == []
    assert invented_times("at about 5 s [#6]", [bike]) == []  # inside the event
    assert invented_times("around 7.5 s", [bike]) == []  # within rounding of its end
    assert invented_times("at 9 s", [bike]) == [9.0]
    assert invented_times("at 9 s", [bike], extra=[9.0]) == []  # the question said 9 s


def test_stray_numbers() -> None:
    assert stray_numbers("The answer is: 2014-01-01: a bicycle at 1.1 s [#36]") == [
        "2014",
        "01",
        "01",
    ]
    assert stray_numbers("Seen 2 times, at 1:02 and 4.8 s [#12], #13", allowed=[2]) == []
    # a stream's name is no number (the remote run's "a man in a car on qa_held1" was refused)
    assert stray_numbers("I saw a man in a car on qa_held1 and cam2 [#3].") == []


# -- templates ---------------------------------------------------------------------------------
def test_when_answers_always_say_when() -> None:
    hits = [row(2, 1.0, 3.0), row(5, 10.0, 12.5)]
    last = answers.last("a bird", hits, "")
    assert "10.0 s to 12.5 s [#5]" in last and last.startswith("The last time I saw a bird")
    first = answers.first("a bird", hits, "")
    assert "1.0 s to 3.0 s [#2]" in first
    assert answers.last("a bird", [], " on cam1") == "I did not see a bird on cam1."


def test_count_joins_one_appearance_cut_into_events() -> None:
    rows = [row(1, 0, 2), row(2, 2, 4), row(3, 4, 6, [["tabby cat", 0.9]]), row(4, 6, 8)]
    hits = [rows[0], rows[1], rows[3]]
    runs = answers.occurrences(hits, rows)
    assert [[r.id for r in run] for run in runs] == [[1, 2], [4]]
    text = answers.count("a bird", runs, "")
    assert text.startswith("I saw a bird 2 times") and "0.0 s to 4.0 s [#1, #2]" in text
    assert answers.states_count(text, 2) and not answers.states_count("one bird [#1]", 2)
    assert answers.states_count("I saw it two times [#1]", 2)
    assert answers.count("a bird", [], "").endswith("0 times.")


def test_presence_says_yes_or_no() -> None:
    yes = answers.presence("a bird", [row(3, 1, 2)], "")
    assert yes.startswith("Yes") and "[#3]" in yes
    no = answers.presence("a giraffe", [], " between 0:10 and 0:20")
    assert no == "No, I did not see a giraffe between 0:10 and 0:20."
    assert answers.states_yes_no(yes, True) and not answers.states_yes_no(yes, False)
    # only a broader thing was seen: neither yes nor no, but what was seen, when, and the doubt
    hedge = answers.presence("a bicycle", [row(4, 1, 2)], "", broader="vehicle")
    assert hedge == (
        "Not sure: I saw a vehicle (I could not tell whether it was a bicycle): 1.0 s to 2.0 s "
        "[#4]."
    )
    assert not answers.states_yes_no(hedge, True) and not answers.states_yes_no(hedge, False)


def test_words_the_labels_cannot_check() -> None:
    assert unchecked_words("people walking") == ["walking"]
    assert unchecked_words("a red car") == ["red"]
    assert unchecked_words("a man in a car") == []  # a person and a car: both checkable
    assert unchecked_words("any bicycles") == []


def test_where_names_stream_and_window() -> None:
    assert answers.where(Intent("range", "", 10.0, 20.0), "cam1") == (
        " on cam1 between 10.0 s and 20.0 s"
    )
    assert answers.where(Intent("summary", ""), None) == ""


# -- summaries ---------------------------------------------------------------------------------
def test_summary_of_a_short_stream_lists_every_event() -> None:
    rows = [row(1, 0, 4, caption="A parrot on a branch."), row(2, 4, 9, [["minivan", 0.7]])]
    text = answers.summary(Intent("summary", ""), rows, None)
    assert text.splitlines() == [
        "What happened (0.0 s to 9.0 s, 2 events):",
        "- [#1] 0.0 s to 4.0 s: A parrot on a branch.",
        "- [#2] 4.0 s to 9.0 s: A minivan (a car, a van).",
    ]


def test_summary_never_says_nothing_when_there_are_events() -> None:
    text = answers.summary(Intent("summary", ""), [row(1, 0, 1, labels=[])], None)
    assert "nothing" not in text.lower() and "[#1]" in text
    assert answers.summary(Intent("summary", ""), [], None).startswith("I have no events")


def test_summary_of_a_long_stream_is_bounded_periods_then_the_whole() -> None:
    labels = [[["sulphur-crested cockatoo", 0.6]], [["minivan", 0.7]], [["tabby cat", 0.8]]]
    rows = [row(i + 1, i * 2.5, i * 2.5 + 2.5, labels[(i // 960) % 3]) for i in range(2880)]
    text = summary.timeline(rows)  # two hours at one event per 2.5 s
    lines = text.splitlines()
    assert len(lines) <= 1 + summary.MAX_PERIODS + 1
    assert lines[0] == "What happened (0.0 s to 2:00:00, 2880 events):"
    assert "parrot" in lines[1] and "cat" in lines[-2]
    assert lines[-1].startswith("Overall: mostly ")
    # every period line cites its first and last events, whose times it states
    assert "- 0.0 s to 15:00 [#1, #360]:" in lines[1]


# -- caption checks ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("caption", "labels", "problem"),
    [
        ("", [["pig", 0.9]], "empty"),
        ("A pig is a pig.", [["pig", 0.9]], "repeats"),
        ("A mountain bike is lit on a mountain bike.", [["mountain bike", 0.5]], "repeats"),
        ("A nematode (0.09) is eaten by a snowy mink (0.01).", [["nematode", 0.09]], "numbers"),
        ("A snoek fish is used to launch a tank.", [["mountain bike", 0.5]], "contradicts labels"),
        ("The beginning of the video.", [["pig", 0.9]], "says nothing"),
        ("A parrot.", [["sulphur-crested cockatoo", 0.6]], None),
        # the street, the darkness and the sitting were never measured (test_content_check)
        ("A parrot sits on a branch.", [["sulphur-crested cockatoo", 0.6]], INVENTED),
        ("A dark street scene, the camera panning.", [["streetcar", 0.05]], INVENTED),
        # words about the filming or the edit alone say nothing about what is shown
        ("A cut, the camera pans.", [["streetcar", 0.05]], "says nothing"),
        # a confident subject must be named: the thing, or a word above it
        ("A dark street scene.", [["bow tie", 0.4], ["suit", 0.2]], "misses what was seen"),
        ("A person in a suit.", [["bow tie", 0.4], ["suit", 0.2]], None),
        ("A bow tie on a white shirt.", [["bow tie", 0.4]], INVENTED),
        ("A bow tie.", [["bow tie", 0.4]], None),
    ],
)
def test_caption_checks(caption: str, labels: list[list[Any]], problem: str | None) -> None:
    assert caption_check.problem(caption, row(1, 0, 1, labels)) == problem


def test_a_caption_may_not_contradict_the_measured_camera() -> None:
    event = row(1, 0, 1, [["limousine", 0.6]])
    event.keyframes = [{"look": {"camera": "fast motion"}}, {"look": {"camera": "fast motion"}}]
    assert caption_check.problem("A limousine, a still shot.", event) == "contradicts the camera"
    assert caption_check.problem("A limousine in fast motion.", event) is None
    assert caption_check.problem("A limousine.", event) is None  # says none


def test_a_copied_worked_example_is_not_a_caption() -> None:
    event = row(1, 0, 1, [["minivan", 0.6]])
    example = "A dark street scene, the camera panning."
    assert caption_check.problem("A dark street scene, the camera panning.", event, [example])
    assert caption_check.problem("A dark car scene, the camera panning.", event, [example])
    assert caption_check.problem("A minivan, a car.", event, [example]) is None
