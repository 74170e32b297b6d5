"""Wall-clock times in answers: a live stream's events are told on the clock (in the configured
zone, named), a file's in stream time; the time check reads both, so an invented clock time is
caught like an invented stream time."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from eventvstream.config import LanguageSettings
from eventvstream.language import answers, prompts, summary
from eventvstream.language.grounding import (
    Span,
    Times,
    duration,
    invented_times,
    stated_times,
    stray_numbers,
)
from eventvstream.language.intent import Intent
from eventvstream.language.wallclock import Clock, marks, zone
from eventvstream.memory.store import EventRow

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

UTC = ZoneInfo("UTC")
NOW = datetime(2026, 12, 2, 10, 40, 0, tzinfo=UTC).timestamp()
TIMES = Times(Clock(), NOW)
# Wall clock of the stream's t = 0: 10:30:37.5 UTC, so stream 27.8-36.5 s is 10:31:05.3-10:31:14.
ORIGIN = datetime(2026, 12, 2, 10, 30, 37, 500000, tzinfo=UTC).timestamp()
CLOCK = re.compile(r"\d\d:\d\d:\d\d to \d\d:\d\d:\d\d UTC")


def row(event_id: int, start: float, end: float, *, live: bool = True, **kw: Any) -> EventRow:
    return EventRow(
        event_id, "cam1", "", None, None, start, end, 4, np.zeros(8, np.float32), [],
        kw.get("labels", [["sulphur-crested cockatoo", 0.6]]), {}, kw.get("caption"), None,
        None, 0, event_id, 0.0, 0.0, ORIGIN + start if live else None,
    )  # fmt: skip


# -- zones and formatting ---------------------------------------------------------------------
def test_zone_names() -> None:
    assert Clock.named("UTC").label(NOW) == "UTC" and Clock.named("utc").tz is not None
    assert zone("local") is None  # the process's own zone
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Europe/Berln")
    with pytest.raises(ValidationError, match="unknown time zone"):
        LanguageSettings(timezone="Mars/Olympus")
    assert LanguageSettings().timezone == "UTC"
    assert LanguageSettings(timezone="Europe/Berlin").timezone == "Europe/Berlin"


def test_a_live_event_is_told_on_the_clock_a_file_event_in_stream_time() -> None:
    live, file = row(6, 27.8, 36.5), row(7, 27.8, 36.5, live=False)
    assert TIMES.of(live) == "10:31:05 to 10:31:14 UTC"  # seconds cut, as a clock shows them
    assert TIMES.of(file) == "27.8 s to 36.5 s"
    assert TIMES.since(live) == "10:31:05 UTC" and TIMES.since(file) == "27.8 s"
    assert TIMES.extent([live, row(8, 40.0, 70.0)]) == "10:31:05 to 10:31:47 UTC"
    assert TIMES.extent([live, file]) == "27.8 s to 36.5 s"  # no one clock: stream times


def test_other_zones_and_other_days() -> None:
    berlin = Times(Clock.named("Europe/Berlin"), NOW)
    assert berlin.of(row(6, 27.8, 36.5)) == "11:31:05 to 11:31:14 CET"
    summer = datetime(2026, 7, 1, 8, 0, tzinfo=UTC).timestamp()
    assert Clock.named("Europe/Berlin").moment(summer, summer) == "10:00:00 CEST"
    tomorrow = Times(Clock(), NOW + 86400)  # yesterday's event carries its date
    assert tomorrow.of(row(6, 27.8, 36.5)) == "2026-12-02 10:31:05 to 10:31:14 UTC"
    midnight = datetime(2026, 12, 1, 23, 59, 58, tzinfo=UTC).timestamp()  # across midnight
    assert Clock().span(midnight, midnight + 5, NOW) == (
        "2026-12-01 23:59:58 to 2026-12-02 00:00:03 UTC"
    )


def test_durations_read_back_as_the_same_time() -> None:
    for seconds, text in [
        (300, "5 minutes"),
        (3600, "1 hour"),
        (90, "90 seconds"),
        (1, "1 second"),
    ]:
        assert duration(seconds) == text
        assert stated_times(text) == [seconds]


def test_clock_marks_in_a_text() -> None:
    found = marks("from 10:31:05 to 10:31 UTC, 9:05 pm, 2026-12-01 23:59:58 and 0:04.8 [#3]")
    assert [m.text.strip() for m in found] == [
        "10:31:05", "10:31", "9:05 pm", "2026-12-01 23:59:58", "0:04.8",
    ]  # fmt: skip
    assert [m.day_s for m in found][:3] == [37865, 37860, 21 * 3600 + 300]
    assert [m.precision for m in found][:2] == [1.0, 60.0]
    assert found[3].day == datetime(2026, 12, 1).date()
    assert found[4].stream_s == pytest.approx(4.8)


# -- the time check ---------------------------------------------------------------------------
def test_an_invented_clock_time_is_caught() -> None:
    dog = row(6, 27.8, 36.5)  # 10:31:05.3 - 10:31:14.0 UTC
    told = f"I saw a dog from {TIMES.of(dog)} [#6]."
    assert invented_times(told, [dog]) == []
    assert invented_times("a dog at 10:31 [#6]", [dog]) == []  # the minute it happened in
    assert invented_times("a dog around 10:31:10 UTC [#6]", [dog]) == []
    assert invented_times("a dog at 10:45:00 [#6]", [dog]) == [10 * 3600 + 45 * 60]
    assert invented_times("a dog at 10:31:20 [#6]", [dog]) == [37880]  # just after it
    assert invented_times("a dog at 10:30 [#6]", [dog]) == [37800]  # the minute before
    assert invented_times("a dog at 10:31 pm [#6]", [dog]) == [22 * 3600 + 31 * 60]
    assert invented_times("a dog on 2026-11-30 10:31:05 [#6]", [dog])  # the wrong day
    assert invented_times("a dog on 2026-12-02 10:31:05 [#6]", [dog]) == []
    # stream times of a live event in clock form are not its clock
    assert invented_times("a dog from 0:27 to 0:36 [#6]", [dog]) == [27 * 60, 36 * 60]
    # a clock time the question gave may be echoed ("since 10:30" -> 37800 s after midnight)
    assert invented_times("since 10:30 UTC: a dog [#6]", [dog], extra=[37800.0]) == []
    assert invented_times("between 1:30 and 2:00 [#6]", [dog], extra=[90.0, 120.0]) == []
    # another zone: the same moment is 11:31:05 in Berlin
    berlin = Clock.named("Europe/Berlin")
    assert invented_times("a dog at 11:31:05 CET [#6]", [dog], zone=berlin) == []
    assert invented_times("a dog at 10:31:05 [#6]", [dog], zone=berlin) == [37865]


def test_the_check_still_reads_stream_times_for_files() -> None:
    bike = row(6, 4.8, 7.3, live=False)
    assert invented_times("between 0:03 and 0:10 [#6]", [bike]) == [3.0, 10.0]
    assert invented_times("from 4.8 s to 7.3 s [#6]", [bike]) == []
    # mixed evidence: a clock form may be the file event's stream time
    assert invented_times("at 0:05 and 10:31:06 [#6, #7]", [bike, row(7, 27.8, 36.5)]) == []


def test_a_dated_clock_time_is_no_stray_number() -> None:
    assert stray_numbers("seen 2026-12-01 10:31:05 to 10:31:14 UTC [#6]") == []
    assert stray_numbers("The answer is: 2014-01-01: a bicycle") == ["2014", "01", "01"]


def test_bench_qa_reads_the_clock_in_live_citations() -> None:
    """The benchmark's own check is the answerer's: a live answer stating its clock passes, one
    stating a clock time outside its citations does not."""
    from bench_qa import invented

    dog = row(6, 27.8, 36.5)
    cited = [{"id": 6, "start": 27.8, "end": 36.5, "wall_start": dog.wall_start}]
    ok = {"text": f"The last time I saw a dog was {TIMES.of(dog)} [#6].", "citations": cited}
    assert not invented(ok, "when did we last see a dog?")
    bad = {"text": "The last time I saw a dog was 10:35:00 UTC [#6].", "citations": cited}
    assert invented(bad, "when did we last see a dog?")
    assert not invented({**bad, "text": "since 10:35 UTC [#6]"}, "what happened since 10:35?")
    file = {"text": "from 27.8 s to 36.5 s [#6]", "citations": [{"start": 27.8, "end": 36.5}]}
    assert not invented(file, "when?") and Span(1.0, 2.0).wall_start is None


# -- every answer family ----------------------------------------------------------------------
def _families(rows: list[EventRow], times: Times) -> dict[str, tuple[str, list[EventRow]]]:
    """Each family's templated answer over ``rows``, with the events it cites."""
    open_row = row(-1, rows[-1].end, rows[-1].end + 3.0, live=rows[0].wall_start is not None)
    runs = answers.occurrences(rows[:2], rows)
    return {
        "summary": (answers.summary(Intent("summary", ""), rows, "cam1", times), rows),
        "now": (answers.now([*rows, open_row], times), [rows[-1], open_row]),
        "last": (answers.last("dog", rows, "", times), rows[-1:]),
        "first": (answers.first("dog", rows, "", times), rows[:1]),
        "count": (answers.count("dog", runs, "", times), rows[:2]),
        "presence": (answers.presence("dog", rows, "", None, times), rows[:3]),
        "hedge": (answers.presence("terrier", rows, "", "dog", times), rows[:3]),
        "search": (answers.sightings("dog", rows, "", times), rows),
    }


def test_every_answer_family_states_the_clock_of_a_live_stream() -> None:
    rows = [row(i, 10.0 * i, 10.0 * i + 6, caption="A dog.") for i in range(1, 5)]
    for family, (text, cited) in _families(rows, TIMES).items():
        assert " s to " not in text and not re.search(r"\d s\b", text), (family, text)
        assert re.search(r"\d\d:\d\d:\d\d( to \d\d:\d\d:\d\d)? UTC", text), (family, text)
        # consistent with what it cites: the template passes its own time check
        assert invented_times(text, cited) == [], (family, text)
    last = _families(rows, TIMES)["last"][0]
    assert "10:31:17 to 10:31:23 UTC [#4]" in last  # stream 40-46 s: 10:31:17.5-10:31:23.5


def test_a_long_live_stream_summary_states_the_clock_per_period() -> None:
    rows = [row(i, 5.0 * i, 5.0 * i + 5) for i in range(40)]
    text = summary.timeline(rows, times=TIMES)
    assert len(CLOCK.findall(text)) >= 2 and " s to " not in text
    assert invented_times(text, rows) == []


def test_every_answer_family_keeps_stream_times_for_a_file() -> None:
    rows = [row(i, 10.0 * i, 10.0 * i + 6, live=False, caption="A dog.") for i in range(1, 5)]
    for family, (text, cited) in _families(rows, TIMES).items():
        assert "UTC" not in text and re.search(r"\d s to \d|\d:\d\d", text), (family, text)
        assert invented_times(text, cited) == [], (family, text)


def test_the_scope_of_a_clock_window_is_said_as_asked() -> None:
    assert answers.where(Intent("range", "", at="10:30", t0=5.0, t1=9.0), None, "UTC") == (
        " at 10:30 UTC"
    )
    assert answers.where(Intent("range", "", since="9:15 pm"), "door", "UTC") == (
        " on door since 9:15 pm UTC"
    )
    assert answers.where(Intent("range", "", recent_s=300, t0=12.0), None, "UTC") == (
        " in the last 5 minutes"
    )
    assert answers.where(Intent("range", "", ago_s=600), None, "UTC") == " around 10 minutes ago"
    # a file's window stays in stream time
    assert answers.where(Intent("range", "", since="1:30", t0=90.0), None) == " since 1:30"


def test_the_decoder_sees_the_clock_it_must_state() -> None:
    live, file = row(6, 27.8, 36.5, caption="A dog."), row(7, 2.0, 4.0, live=False)
    text = prompts.evidence_text([live, file], TIMES)
    assert "[#6] cam1, 10:31:05 to 10:31:14 UTC: A dog." in text
    assert "[#7] cam1, 2.0 s to 4.0 s:" in text
