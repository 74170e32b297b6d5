"""A range written as clock times ("between 10:30 and 10:45") on a live stream's real memory
(SQLite + FAISS): read on the wall clock in ``language.timezone`` and mapped to the stream
times of the events then — across midnight, on a daylight-saving day, the other way round, in
an outage (nothing: said so) — while a file keeps reading it as stream times."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from eventvstream.config import LanguageSettings, MemorySettings
from eventvstream.language import qa
from eventvstream.language.intent import parse
from eventvstream.language.qa import Answerer
from eventvstream.language.wallclock import Clock
from eventvstream.language.windows import resolve_window
from eventvstream.memory import MemoryBank
from eventvstream.memory.retrieval import Scope

DIM = 16
BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*when: int) -> float:
    return datetime(*when, tzinfo=BERLIN).timestamp()  # type: ignore[misc]


def utc(*when: int) -> float:
    return datetime(*when, tzinfo=ZoneInfo("UTC")).timestamp()  # type: ignore[misc]


#: A camera's events (2 s each) at these Berlin times; stream time counts from the first.
DAY = [berlin(2026, 12, 2, 10, m) for m in (20, 29, 31, 44, 50)]
NOW = berlin(2026, 12, 2, 11, 0)
NIGHT = [berlin(2026, 12, 1, 23, 40), berlin(2026, 12, 1, 23, 55), berlin(2026, 12, 2, 0, 5)]
NIGHT_NOW = berlin(2026, 12, 2, 0, 20)
# Berlin set its clocks back at 03:00 CEST on 2026-10-25 (to 02:00 CET): 01:45 CEST, the
# second 02:30 (CET), 03:45 CET
DST = [utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 45)]
DST_NOW = utc(2026, 10, 25, 12, 0)


def event(start: float, rng: np.random.Generator, wall: float | None) -> dict[str, Any]:
    vector = rng.standard_normal(DIM).astype(np.float32)
    return {
        "start": start,
        "end": start + 2.0,
        "frames": 4,
        "embedding": vector / np.linalg.norm(vector),
        "keyframes": [{"t": start, "frame_index": int(start * 2), "labels": []}],
        "labels": [["dog", 0.9]],
        "boundaries": {},
        **({"wall_start": wall} if wall is not None else {}),
    }


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = MemorySettings(data_dir=tmp_path_factory.mktemp("ranges"), consolidate=False)
    rng = np.random.default_rng(0)
    with MemoryBank(settings, visual_dim=DIM) as memory:
        for stream, walls in (("cam", DAY), ("night", NIGHT), ("dst", DST)):
            for wall in walls:
                memory.add(event(wall - walls[0], rng, wall), stream=stream)
        for start in (0.0, 600.0, 640.0, 700.0):  # a file: 0 s, 10:00, 10:40, 11:40
            memory.add(event(start, rng, None), stream="file")
        yield memory


def walls_in(bank: MemoryBank, question: str, stream: str, now: float, zone: str) -> list[float]:
    """The wall-clock starts of the events in the window ``question`` names."""
    window = resolve_window(bank, Clock.named(zone), parse(question), Scope(stream=stream), now)
    assert window.on_clock
    found = bank.events(stream=stream, t0=window.intent.t0, t1=window.intent.t1)
    return [row.wall_start for row in found]


@pytest.mark.parametrize(
    ("question", "minutes"),
    [
        ("what happened between 10:30 and 10:45?", [31, 44]),
        ("what happened between 10:45 and 10:30?", [31, 44]),  # the other way round
        ("what happened from 10:30am to 11", [31, 44, 50]),
        ("what happened from 10 to 10:29 am", [20, 29]),
        ("what happened between 10:29:01 and 10:31:01?", [29, 31]),  # inside an event each
        ("what happened between 10:29:30 and 10:31:01?", [31]),  # after 10:29's (2 s) ended
        ("what happened between 10:00 and 10:19?", []),  # before the camera's first event
        ("what happened between 10:35 and 10:40?", []),  # in a gap
    ],
)
def test_a_clock_range_is_read_on_the_wall_clock(
    bank: MemoryBank, question: str, minutes: list[int]
) -> None:
    expected = [berlin(2026, 12, 2, 10, m) for m in minutes]
    assert walls_in(bank, question, "cam", NOW, "Europe/Berlin") == expected


def test_a_moment_before_the_first_event_or_in_a_gap_has_nothing(bank: MemoryBank) -> None:
    """Both ends of "at 10:00" fall before the camera's first event (10:20): no events, not
    the first one (whose start both ends map to)."""
    assert walls_in(bank, "what happened at 10:00?", "cam", NOW, "Europe/Berlin") == []
    assert walls_in(bank, "what happened at 10:40?", "cam", NOW, "Europe/Berlin") == []
    assert walls_in(bank, "what happened at 10:44?", "cam", NOW, "Europe/Berlin") == DAY[3:4]


def test_the_same_range_in_another_zone_is_another_moment(bank: MemoryBank) -> None:
    # 10:30-10:45 Berlin is 09:30-09:45 UTC
    assert walls_in(bank, "between 09:30 and 09:45", "cam", NOW, "UTC") == DAY[2:4]
    assert walls_in(bank, "between 10:30 and 10:45", "cam", NOW, "UTC") == []


def test_a_range_across_midnight(bank: MemoryBank) -> None:
    question = "what happened between 23:50 and 00:10?"
    assert walls_in(bank, question, "night", NIGHT_NOW, "Europe/Berlin") == NIGHT[1:]
    window = resolve_window(
        bank, Clock.named("Europe/Berlin"), parse(question), Scope("night"), NIGHT_NOW
    )
    # said as read, each end dated off the day before it (as answers date events)
    assert window.intent.between == ("2026-12-01 23:50", "2026-12-02 00:10")
    assert window.times == [23 * 3600 + 50 * 60, 10 * 60]  # a phrasing may echo them


def test_a_range_on_the_day_the_clocks_went_back(bank: MemoryBank) -> None:
    """01:30 CEST to 03:30 CET is three hours, not two: the second 02:30 is in it, 03:45
    not."""
    question = "what happened between 1:30 and 3:30?"
    assert walls_in(bank, question, "dst", DST_NOW, "Europe/Berlin") == DST[:2]


def test_a_file_keeps_stream_times(bank: MemoryBank) -> None:
    clock = Clock.named("Europe/Berlin")
    for question, starts in [
        ("what happened between 10:30 and 10:45?", [640.0]),  # 630-645 s
        ("what happened from 0:00 to 0:30?", [0.0]),
    ]:
        window = resolve_window(bank, clock, parse(question), Scope(stream="file"), NOW)
        assert not window.on_clock
        found = bank.events(stream="file", t0=window.intent.t0, t1=window.intent.t1)
        assert [row.start for row in found] == starts


def test_a_stream_time_range_on_a_live_stream_stays_stream_time(bank: MemoryBank) -> None:
    window = resolve_window(
        bank, Clock.named("UTC"), parse("from 0:30 to 0:45"), Scope(stream="cam"), NOW
    )
    assert (window.intent.t0, window.intent.t1, window.on_clock) == (30.0, 45.0, False)


def answerer(bank: MemoryBank, monkeypatch: pytest.MonkeyPatch) -> Answerer:
    """The real answerer on this memory, its clock stopped at :data:`NOW` (no decoder: the
    templated answers; text similarity is never needed, the labels name the dog)."""
    monkeypatch.setattr(qa, "time", SimpleNamespace(time=lambda: NOW))
    retriever = SimpleNamespace(text_embedder=SimpleNamespace(embed=None))
    return Answerer(bank, retriever, None, LanguageSettings(timezone="Europe/Berlin"))  # type: ignore[arg-type]


def test_the_answer_cites_the_window_and_says_it_on_the_clock(
    bank: MemoryBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask = answerer(bank, monkeypatch).answer
    answer = ask("what happened between 10:30 and 10:45?", Scope(stream="cam"))
    assert [c["wall_start"] for c in answer.citations] == DAY[2:4]
    assert "between 10:30 and 10:45 CET" in answer.text
    assert "10:31:00 to 10:31:02 CET" in answer.text and "10:44:00" in answer.text
    assert "10:50" not in answer.text and "10:29:00" not in answer.text
    answer = ask("was there a dog from 10:30am to 11?", Scope(stream="cam"))
    assert [c["wall_start"] for c in answer.citations] == DAY[2:]
    assert "between 10:30 and 11:00 CET" in answer.text  # the ends as they were read


def test_a_range_with_nothing_in_it_says_so(
    bank: MemoryBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask = answerer(bank, monkeypatch).answer
    answer = ask("what happened between 10:35 and 10:40?", Scope(stream="cam"))
    assert answer.citations == [] and not answer.grounded
    assert answer.text == "I have no events in memory on cam between 10:35 and 10:40 CET."
    answer = ask("was there a dog between 10:35 and 10:40?", Scope(stream="cam"))
    assert answer.citations == [] and answer.text.startswith("No")
    assert "between 10:35 and 10:40 CET" in answer.text


def test_a_file_cannot_place_am_or_pm(bank: MemoryBank, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = answerer(bank, monkeypatch).answer("what happened from 9am to 11?", Scope("file"))
    assert answer.citations == [] and "cannot place 9am to 11" in answer.text


def test_a_phrasing_may_echo_the_range_but_not_invent_a_time(
    bank: MemoryBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The no-invented-times check on a clock range: the range's ends as read and the cited
    events' clock times may be said; a time outside them may not."""
    answers = answerer(bank, monkeypatch)
    plan = answers.plan("was there a dog between 10:30 and 10:45?", Scope(stream="cam"))
    first = plan.events[0]
    assert first.wall_start == DAY[2] and plan.question_times == [37800.0, 38700.0]
    echo = f"Yes, I saw a dog between 10:30 and 10:45 CET, at 10:31:00 [#{first.id}]."
    assert answers.problem(plan, echo) is None
    invented = f"Yes, I saw a dog at 10:50:00 CET [#{first.id}]."
    assert answers.problem(plan, invented) == "states a time no cited event has"
