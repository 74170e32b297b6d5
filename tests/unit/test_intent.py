"""Question shapes (summary, now, last, first, count, presence, range, search), their time
windows and named streams, with the topic left to look for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from eventvstream.language.intent import (
    Intent,
    clock_precision,
    is_moment,
    is_since,
    parse,
    parse_time,
    since_seconds,
)
from eventvstream.language.intent_llm import SCHEMA, parse_with_decoder, validate
from eventvstream.language.wallclock import Clock


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
    "question",
    [
        "what happened?",
        "What happened in the video?",
        "summarise the video",
        "Summarize",
        "what did I miss",
        "give me an overview",
        "recap please",
        "what's happened so far?",
        "was there anything?",
    ],
)
def test_summary(question: str) -> None:
    assert parse(question) == Intent("summary", "")


@pytest.mark.parametrize(
    ("question", "kind", "topic"),
    [
        ("when did the bird first appear?", "first", "bird"),
        ("when did we first see a red car", "first", "red car"),
        ("what was the earliest dog?", "first", "dog"),
        ("how many times did a car appear?", "count", "car"),
        ("how often did we see people walking", "count", "people walking"),
        ("did we see a giraffe?", "presence", "giraffe"),
        ("was there a dog?", "presence", "dog"),
        ("Were there any bicycles?", "presence", "bicycles"),
        ("is anyone walking?", "presence", "anyone walking"),
        ("have you seen a cat", "presence", "cat"),
        ("what happened to the dog", "search", "dog"),
    ],
)
def test_first_count_presence(question: str, kind: str, topic: str) -> None:
    intent = parse(question)
    assert (intent.kind, intent.topic) == (kind, topic)


def test_when_is_remembered() -> None:
    assert parse("when did we see a mountain bike?").when
    assert parse("when did we see a mountain bike?").kind == "search"
    assert not parse("did we see a mountain bike?").when


@pytest.mark.parametrize(
    ("question", "field", "value", "kind"),
    [
        ("what happened in the last 5 minutes", "recent_s", 300.0, "range"),
        ("what was happening 10 minutes ago?", "ago_s", 600.0, "range"),
        ("was there a dog an hour ago?", "ago_s", 3600.0, "presence"),
        ("what happened since 10:30", "since", "10:30", "range"),
        ("did a car come by after 9:15 pm?", "since", "9:15 pm", "presence"),
        ("how many times did a dog appear in the past minute", "recent_s", 60.0, "count"),
    ],
)
def test_windows_relative_to_now(question: str, field: str, value: object, kind: str) -> None:
    intent = parse(question)
    assert getattr(intent, field) == value and intent.kind == kind


def test_since_is_a_wall_clock_on_live_streams_and_a_stream_time_on_files() -> None:
    assert since_seconds("10:30", wall_clock=True) == 10 * 3600 + 30 * 60
    assert since_seconds("9:15 pm", wall_clock=True) == 21 * 3600 + 15 * 60
    assert since_seconds("12:05 am", wall_clock=True) == 5 * 60
    assert since_seconds("10:30", wall_clock=False) == 630.0
    assert since_seconds("90s", wall_clock=True) == 90.0


def test_a_named_stream_is_found_and_removed() -> None:
    streams = ["cam2", "front-door", "cam"]
    intent = parse("what happened on cam2?", streams)
    assert intent == Intent("summary", "", stream="cam2")
    intent = parse("did we see a dog on the front-door camera?", streams)
    assert (intent.kind, intent.topic, intent.stream) == ("presence", "dog", "front-door")
    # a stream name inside another word is not the stream
    assert parse("was there a camel?", streams).stream is None
    assert parse("what happened on cam2?").stream is None  # no known streams: no stream


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


def test_a_window_keeps_its_question() -> None:
    intent = parse("was there a dog between 0:10 and 0:20?")
    assert intent == Intent("presence", "dog", 10.0, 20.0)
    intent = parse("in the first 30 seconds, did a red car appear?")
    assert intent == Intent("presence", "red car", 0.0, 30.0)


@pytest.mark.parametrize(
    ("question", "seconds", "topic"),
    [
        ("what happened in the last 30 seconds", 30.0, ""),
        ("what about the dog during the past 2 minutes?", 120.0, "dog"),
        ("what happened in the last minute", 60.0, ""),
    ],
)
def test_recent_range_counts_back_from_the_end(question: str, seconds: float, topic: str) -> None:
    intent = parse(question)
    assert intent.kind == ("search" if topic else "range")
    assert intent.recent_s == pytest.approx(seconds)
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
    intent = parse(question)
    assert (intent.kind, intent.topic) == ("last", topic)


def test_last_without_a_subject_is_now() -> None:
    assert parse("what was the last thing that happened?") == Intent("now", "")


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("red car", "red car"),
        ("what's the dog doing", "dog doing"),
    ],
)
def test_search(question: str, topic: str) -> None:
    assert parse(question) == Intent("search", topic)


def test_time_phrases_win_over_now_and_last() -> None:
    # "last" inside a range question must not turn it into a "last" search
    assert parse("what happened between 1:00 and 2:00, last?").kind == "range"


def test_contractions_and_vague_words_are_no_topic() -> None:
    assert parse("what's the dog doing") == Intent("search", "dog doing")
    assert parse("what's happened between 0:10 and 0:20").topic == ""


# -- the decoder's JSON parse (gpu / remote profiles) -------------------------------------------
class FixedJsonDecoder:
    """A fake decoder that returns fixed text: it stands in for a capable model (a Llama-3-8B or
    a served one) that cannot run here; the tiny random Llama's path is in the integration
    tests. What is under test is the request and the validation, not a model."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[Any] = []

    def stream(self, request: Any) -> Iterator[str]:
        self.requests.append(request)
        yield self.text


def test_decoder_parse_is_constrained_and_validated() -> None:
    decoder = FixedJsonDecoder(
        '{"kind": "presence", "topic": "a dog", "t0": 60, "t1": 90, "stream": "door"}'
    )
    intent = parse_with_decoder(decoder, "was a dog by door from 1:00 to 1:30?", ["door", "cam1"])
    assert intent == Intent("presence", "dog", 60.0, 90.0, stream="door")
    request = decoder.requests[0]
    assert request.json_schema is SCHEMA and request.temperature == 0.0
    assert "Known streams: door, cam1." in request.messages[-1].content


@pytest.mark.parametrize(
    "text",
    [
        "Sure! The answer is a dog.",  # no JSON
        '{"kind": "gossip", "topic": "dog"}',  # not a kind
        '{"kind": "presence", "topic": "dog", "stream": "garage"}',  # no such stream
        '{"kind": "range", "topic": "", "t0": 3, "t1": 10}',  # times the question never said
        '{"kind": "range", "topic": "", "since": "11:00"}',  # a clock time it never said
        '{"kind": "last", "topic": 7}',
    ],
)
def test_a_bad_decoder_parse_falls_back_to_rules(text: str) -> None:
    assert (
        parse_with_decoder(FixedJsonDecoder(text), "what happened between 1:00 and 1:30?") is None
    )


def test_validate_accepts_relative_windows_the_question_states() -> None:
    raw = '{"kind": "count", "topic": "cars", "recent_s": 300, "when": false}'
    intent = validate(raw, "how many cars in the last 5 minutes?", [])
    assert intent == Intent("count", "cars", recent_s=300.0)


def test_a_moment_on_the_clock() -> None:
    """ "at 10:30" / "around 9:05 pm": a moment, resolved by the answerer (wall clock on a live
    stream); its precision follows how it was written."""
    assert parse("what happened at 10:30?") == Intent("range", "", at="10:30")
    assert parse("was there a dog around 9:05 pm").at == "9:05 pm"
    assert parse("was there a dog around 9:05 pm").kind == "presence"
    assert parse("what happened since 10:30").at is None
    assert clock_precision("10:30") == 60.0 and clock_precision("10:30:15") == 1.0


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_a_clock_moment_is_today_or_yesterday_in_the_configured_zone(zone: str) -> None:
    now = datetime(2026, 12, 2, 1, 0, tzinfo=ZoneInfo(zone)).timestamp()  # 01:00 there
    clock = Clock.named(zone)
    assert clock.latest(30 * 60, now) == now - 30 * 60  # "00:30": half an hour ago
    assert clock.latest(23 * 3600, now) == now - 2 * 3600  # "23:00": yesterday's


def test_a_clock_moment_across_a_daylight_saving_change() -> None:
    """Berlin moved its clocks back at 03:00 on 2026-10-25: "10:30" that day is 09:30 UTC."""
    berlin = Clock.named("Europe/Berlin")
    now = datetime(2026, 10, 25, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    moment = berlin.latest(10.5 * 3600, now)
    assert moment == datetime(2026, 10, 25, 9, 30, tzinfo=ZoneInfo("UTC")).timestamp()


def test_the_decoder_parse_keeps_a_moment_on_the_clock() -> None:
    """The JSON parse has ``at`` too: "what happened at 10:30?" keeps its time point."""
    question = "what happened at 10:30?"
    decoder = FixedJsonDecoder('{"kind": "range", "topic": "", "at": "10:30"}')
    assert (
        parse_with_decoder(decoder, question) == Intent("range", "", at="10:30") == parse(question)
    )
    assert SCHEMA["properties"]["at"] == {"type": ["string", "null"]}
    raw = '{"kind": "presence", "topic": "a dog", "at": "9:05 pm", "since": ""}'
    assert validate(raw, "was there a dog around 9:05 pm?", []) == Intent(
        "presence", "dog", at="9:05 pm"
    )


@pytest.mark.parametrize(
    "at",
    [
        '"11:45"',  # a moment the question never said
        '"half past ten"',  # not a clock time the rules would read
        "1030",  # not a string
        '"10"',  # a bare number is no moment ("at 10" is not read as one either)
        '["10:30"]',
    ],
)
def test_a_malformed_moment_falls_back_to_rules(at: str) -> None:
    question = "what happened at 10:30?"
    raw = f'{{"kind": "range", "topic": "", "at": {at}}}'
    assert validate(raw, question, []) is None
    assert parse_with_decoder(FixedJsonDecoder(raw), question) is None


def test_since_from_the_decoder_must_read_as_a_time_too() -> None:
    question = "has the dog shown up since lunch?"
    assert validate('{"kind": "presence", "topic": "dog", "since": "lunch"}', question, []) is None
    assert is_since("10:30") and is_since("9:15 pm") and is_since("90s") and not is_since("lunch")
    assert is_moment("10:30:15") and is_moment("9:05 p.m.") and not is_moment("10")
