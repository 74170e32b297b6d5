"""Ranges written as clock times ("between 10:30 and 10:45", "from 9am to 11"): which ranges
are clock ranges, the span of the day they name, and the decoder's parse of them."""

from __future__ import annotations

import json

import pytest

from eventvstream.language.clock_range import DAY, day_span, is_clock_range
from eventvstream.language.intent import Intent, parse
from eventvstream.language.intent_llm import SCHEMA, validate
from eventvstream.language.windows import Window, off_clock


def hm(hours: int, minutes: int = 0, seconds: int = 0) -> float:
    return hours * 3600.0 + minutes * 60 + seconds


@pytest.mark.parametrize(
    ("question", "between", "t0", "t1"),
    [
        # hours:minutes: a clock range that keeps its stream reading (a file's)
        ("what happened between 10:30 and 10:45?", ("10:30", "10:45"), 630.0, 645.0),
        ("from 9:15 to 9:20", ("9:15", "9:20"), 555.0, 560.0),
        ("what happened between 00:10 and 00:20?", ("00:10", "00:20"), 10.0, 20.0),
        ("between 0:30 and 1:15", ("0:30", "1:15"), 30.0, 75.0),  # one end not "0:"
        ("between 10:30:15 and 10:31", ("10:30:15", "10:31"), 630.25 * 60, 631.0),
        # am/pm or o'clock: a clock range only
        ("what happened between 10:30am and 11", ("10:30am", "11"), None, None),
        ("from 9 to 11 am", ("9", "11 am"), None, None),
        ("between 9 and 10 o'clock", ("9", "10 o'clock"), None, None),
        ("between 11 p.m. and 1 a.m.", ("11 p.m.", "1 a.m."), None, None),
        ("what happened between 10am and noon?", ("10am", "noon"), None, None),
    ],
)
def test_a_range_written_as_clock_times_is_kept_as_written(
    question: str, between: tuple[str, str], t0: float | None, t1: float | None
) -> None:
    intent = parse(question)
    assert intent.kind == "range" and intent.topic == ""
    assert intent.between == between
    if t0 is None:
        assert intent.t0 is None and intent.t1 is None
    else:
        assert (intent.t0, intent.t1) == (pytest.approx(min(t0, t1)), pytest.approx(max(t0, t1)))


@pytest.mark.parametrize(
    ("question", "t0", "t1"),
    [
        ("what happened between 30 and 45 seconds?", 30.0, 45.0),
        ("what happened from 0:30 to 0:45?", 30.0, 45.0),  # how a player writes 30 s
        ("between 0:05.5 and 0:09", 5.5, 9.0),  # a fraction: no clock shows one
        ("anything from 10 until 20", 10.0, 20.0),  # bare numbers: seconds
        ("between 75:00 and 80:00", 4500.0, 4800.0),  # not a time of day
        ("between 1:30 and 90 s", 90.0, 90.0),  # a unit on one end: stream time
    ],
)
def test_a_range_of_stream_times_stays_one(question: str, t0: float, t1: float) -> None:
    intent = parse(question)
    assert intent.between is None
    assert (intent.t0, intent.t1) == (pytest.approx(t0), pytest.approx(t1))


def test_a_clock_range_keeps_the_question_around_it() -> None:
    intent = parse("was there a dog from 9am to 11 o'clock?")
    assert intent == Intent("presence", "dog", between=("9am", "11 o'clock"))
    assert intent.windowed
    assert parse("how many cars between 10:30 and 10:45?").kind == "count"
    assert parse("did a car pass from 9 to 11 amazing").between is None  # "am" inside a word


@pytest.mark.parametrize(
    ("first", "second", "start", "end"),
    [
        ("10:30", "10:45", hm(10, 30), hm(10, 45)),
        ("10:30am", "11", hm(10, 30), hm(11)),  # "11" borrows am: the shorter span
        ("9", "11 am", hm(9), hm(11)),
        ("11", "1 pm", hm(11), hm(13)),  # lunch, not 23:00 to 13:00
        ("9am", "5pm", hm(9), hm(17)),
        ("12 am", "12:30 am", 0.0, hm(0, 30)),
        ("12 pm", "1 pm", hm(12), hm(13)),
        ("9:15 pm", "21:20", hm(21, 15), hm(21, 20)),
        ("9", "10 o'clock", hm(9), hm(10)),
        ("10", "noon", hm(10), hm(12)),
        ("midnight", "1 am", 0.0, hm(1)),
        ("10:30:15", "10:30:45", hm(10, 30, 15), hm(10, 30, 45)),
    ],
)
def test_the_span_of_the_day_a_clock_range_names(
    first: str, second: str, start: float, end: float
) -> None:
    span = day_span(first, second)
    assert (span.start, span.end) == (start, end) and not span.crosses_midnight


def test_across_midnight_or_written_the_other_way_round() -> None:
    """An end before its start crosses midnight when that span is at most 12 hours; else the
    ends were written the other way round."""
    late = day_span("23:50", "00:10")
    assert (late.start, late.end, late.length) == (hm(23, 50), hm(0, 10), hm(0, 20))
    assert late.crosses_midnight
    assert day_span("11pm", "midnight").crosses_midnight
    assert day_span("11pm", "midnight").length == hm(1)
    night = day_span("10pm", "6am")
    assert night.crosses_midnight and night.length == hm(8)
    reversed_ = day_span("10:45", "10:30")
    assert (reversed_.start, reversed_.end) == (hm(10, 30), hm(10, 45))
    assert not reversed_.crosses_midnight
    assert (day_span("3pm", "9am").start, day_span("3pm", "9am").end) == (hm(9), hm(15))
    same = day_span("10:30", "10:30")  # that minute
    assert (same.start, same.end, same.precision) == (hm(10, 30), hm(10, 31), 60.0)
    assert day_span("10:30:15", "10:31").precision == 1.0
    assert day_span("23:59", "23:59").end == 0.0 and day_span("23:59", "23:59").length == 60.0
    assert all(0 <= t < DAY for t in (late.start, late.end, night.start, night.end))


@pytest.mark.parametrize(
    ("first", "second"),
    [("0:30", "0:45"), ("10", "20"), ("25:00", "26:00"), ("13 pm", "2 pm"), ("10:75", "11:00"),
     ("0 am", "1 am"), ("10:30", "45 s"), ("lunch", "1 pm")],
)  # fmt: skip
def test_what_is_not_a_clock_range(first: str, second: str) -> None:
    assert not is_clock_range(first, second)
    with pytest.raises(ValueError, match="not a clock range"):
        day_span(first, second)


def test_a_file_cannot_place_a_range_written_with_am_or_pm() -> None:
    """On a stream without a wall clock, "from 9am to 11" has no reading: the answer says so;
    "between 10:30 and 10:45" keeps its stream reading there (630-645 s), as before."""
    marked = parse("what happened from 9am to 11?")
    note = off_clock(Window(marked, [], on_clock=False))
    assert note and "cannot place 9am to 11" in note and "wall-clock" in note
    assert off_clock(Window(marked, [], on_clock=True)) is None
    assert off_clock(Window(parse("what happened between 10:30 and 10:45?"), [], False)) is None


# -- the decoder's parse ----------------------------------------------------------------------
def test_the_decoder_parse_carries_a_clock_range() -> None:
    assert SCHEMA["properties"]["between"]["maxItems"] == 2
    question = "what happened between 10:30 and 10:45?"
    raw = json.dumps({"kind": "range", "topic": "", "between": ["10:30", "10:45"]})
    assert validate(raw, question, []) == parse(question)  # the stream reading filled in
    question = "was there a dog from 9am to 11?"
    raw = json.dumps({"kind": "presence", "topic": "a dog", "between": ["9am", " 11 "]})
    assert validate(raw, question, []) == Intent("presence", "dog", between=("9am", "11"))
    raw = json.dumps({"kind": "range", "topic": "", "t0": 30, "t1": 45, "between": []})
    assert validate(raw, "what happened from 0:30 to 0:45?", []) == Intent("range", "", 30, 45)


@pytest.mark.parametrize(
    "between",
    [
        ["10:30", "11:45"],  # an end the question never said
        ["0:30", "10:45"],  # "0:30" only inside "10:30"
        ["10:30"],  # one end
        "10:30 to 10:45",  # not a list
        [1030, 1045],
        ["half past ten", "10:45"],  # not a clock time the rules read
    ],
)
def test_a_bad_clock_range_from_the_decoder_falls_back_to_rules(between: object) -> None:
    raw = json.dumps({"kind": "range", "topic": "", "between": between})
    assert validate(raw, "what happened between 10:30 and 10:45?", []) is None


def test_the_decoder_may_not_make_stream_times_a_clock_range() -> None:
    raw = json.dumps({"kind": "range", "topic": "", "between": ["0:30", "0:45"]})
    assert validate(raw, "what happened from 0:30 to 0:45?", []) is None
