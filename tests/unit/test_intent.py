"""Question shapes: now / range / last / search, with the topic left to look for."""

from __future__ import annotations

import pytest

from eventvstream.language.intent import Intent, parse, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:30", 90.0),
        ("0:05.5", 5.5),
        ("1:02:03", 3723.0),
        ("90s", 90.0),
        ("90 sec", 90.0),
        ("45", 45.0),
        ("2 minutes", 120.0),
        ("2 mins", 120.0),
        ("1m30s", 90.0),
        ("1 min 30 secs", 90.0),
        ("1h30m", 5400.0),
        ("1.5 hours", 5400.0),
        (" 3 M ", 180.0),
    ],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "question",
    [
        "what is happening now",
        "What is going on right now?",
        "what's happening at the moment",
        "what is currently going on",
        "latest",
    ],
)
def test_now(question: str) -> None:
    intent = parse(question)
    assert intent.kind == "now" and intent.topic == ""
    assert intent.t0 is None and intent.t1 is None


def test_now_keeps_a_subject() -> None:
    assert parse("currently, what is the dog doing?") == Intent("now", "dog doing")


@pytest.mark.parametrize(
    ("question", "t0", "t1"),
    [
        ("what happened between 1:30 and 2:00", 90.0, 120.0),
        ("what happened between 2:00 and 1:30", 90.0, 120.0),  # reversed: sorted
        ("what happened from 60s to 90s?", 60.0, 90.0),
        ("what happened from 90s to 2 minutes", 90.0, 120.0),
        ("what happened from 1m30s to 3m", 90.0, 180.0),
        ("anything from 10 until 20", 10.0, 20.0),
        ("what happened between 1:00:00 and 1:02:03", 3600.0, 3723.0),
        ("what happened in the first 2 minutes", 0.0, 120.0),
        ("what happened in the first 30 s", 0.0, 30.0),
        # a bare first number shares the unit written after the second...
        ("what happened between 1 and 2 minutes", 60.0, 120.0),
        ("from 10 to 20 seconds", 10.0, 20.0),
        # ...unless that would put it past the second
        ("from 30 to 1 minute", 30.0, 60.0),
    ],
)
def test_range(question: str, t0: float, t1: float) -> None:
    intent = parse(question)
    assert intent.kind == "range"
    assert (intent.t0, intent.t1) == (pytest.approx(t0), pytest.approx(t1))
    assert intent.topic == ""
    assert intent.recent_s is None


def test_range_keeps_its_topic() -> None:
    intent = parse("was there a dog between 0:10 and 0:20?")
    assert intent == Intent("range", "dog", 10.0, 20.0)
    intent = parse("in the first 30 seconds, did a red car appear?")
    assert intent == Intent("range", "red car", 0.0, 30.0)


@pytest.mark.parametrize(
    ("question", "seconds", "topic"),
    [
        ("what happened in the last 30 seconds", 30.0, ""),
        ("was the dog there during the past 2 minutes?", 120.0, "dog"),
        ("what happened in the last minute", 60.0, ""),
    ],
)
def test_recent_range_counts_back_from_the_end(question: str, seconds: float, topic: str) -> None:
    intent = parse(question)
    assert intent.kind == "range" and intent.recent_s == pytest.approx(seconds)
    assert intent.topic == topic and intent.t0 is None and intent.t1 is None


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("when did the golden retriever last appear", "golden retriever"),
        ("When was the last time a bicycle was shown?", "bicycle"),
        ("most recently, a kitchen stove", "kitchen stove"),
    ],
)
def test_last(question: str, topic: str) -> None:
    assert parse(question) == Intent("last", topic)


def test_last_without_a_subject_is_now() -> None:
    assert parse("what was the last thing that happened?") == Intent("now", "")


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("was there an elephant", "elephant"),
        ("did we see a mountain bike?", "mountain bike"),
        ("red car", "red car"),
    ],
)
def test_search(question: str, topic: str) -> None:
    assert parse(question) == Intent("search", topic)


def test_time_phrases_win_over_now_and_last() -> None:
    # "last" inside a range question must not turn it into a "last" search
    assert parse("what happened between 1:00 and 2:00, last?").kind == "range"


def test_contractions_and_vague_words_are_no_topic() -> None:
    assert parse("what's the dog doing") == Intent("search", "dog doing")
    assert parse("was there anything?") == Intent("search", "")
    assert parse("what's happened between 0:10 and 0:20").topic == ""
