"""The pure parts of alerts: conditions, thresholds, cooldown, rate limit, signatures, backoff."""

from __future__ import annotations

import random

import numpy as np
import pytest

from eventvstream.serving.alerts.matching import (
    HOUR_S,
    Condition,
    EventView,
    WatchHistory,
    WatchRule,
    decide,
    parse_condition,
)
from eventvstream.serving.alerts.sender import backoff_s
from eventvstream.serving.alerts.verify import read_answer
from eventvstream.serving.alerts.webhook import body_bytes, sign, verify_signature


def unit(*values: float) -> np.ndarray:
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def rule(**kw) -> WatchRule:
    base = dict(
        id="w1",
        owner="k1",
        stream="door",
        condition=Condition("semantic"),
        threshold=0.5,
        cooldown_s=30.0,
        max_per_hour=3,
        created=100.0,
        vector=unit(1, 0, 0),
    )
    return WatchRule(**(base | kw))


def event(id_: int = 1, start: float = 0.0, end: float = 5.0, **kw) -> EventView:
    base = dict(
        id=id_,
        owner="k1",
        stream="door",
        start=start,
        end=end,
        updated=200.0,
        vector=unit(1, 0.2, 0),
    )
    return EventView(**(base | kw))


@pytest.mark.parametrize(
    ("text", "kind", "seconds"),
    [
        ("a bird at the feeder", "semantic", None),
        ("any event longer than 5 minutes", "duration", 300.0),
        ("something lasting more than 90 s", "duration", 90.0),
        ("an event longer than 2 hours", "duration", 7200.0),
        ("it gets dark", "dark", None),
        ("when the garden goes dark", "dark", None),
        ("it gets light again", "light", None),
        ("a dark car", "semantic", None),  # "dark" as an adjective is a description
    ],
)
def test_plain_language_conditions(text, kind, seconds):
    condition = parse_condition(text)
    assert condition.kind == kind
    assert condition.min_duration_s == seconds


def test_explicit_duration_wins_over_text():
    assert parse_condition("a bird", min_duration_s=12) == Condition("duration", 12.0)


def test_threshold_decides_and_reports_score():
    hit = decide(rule(), event(), WatchHistory(), now=1000)
    assert hit.fire and hit.reason == "matched"
    assert hit.score == pytest.approx(float(unit(1, 0.2, 0) @ unit(1, 0, 0)))
    miss = decide(rule(), event(vector=unit(0, 1, 0)), WatchHistory(), now=1000)
    assert not miss.fire and miss.reason == "below_threshold"
    assert miss.score == pytest.approx(0.0, abs=1e-6)


def test_no_description_yet_never_fires():
    assert decide(rule(), event(vector=None), WatchHistory(), 1000).reason == "no_description"


def test_scope_owner_stream_and_age():
    history = WatchHistory()
    assert decide(rule(), event(owner="k2"), history, 1000).reason == "not_applicable"
    assert decide(rule(), event(stream="yard"), history, 1000).reason == "not_applicable"
    assert decide(rule(stream=None), event(stream="yard"), history, 1000).fire
    # an event last changed before the watch existed is history, not news
    assert decide(rule(created=300.0), event(), history, 1000).reason == "not_applicable"
    assert decide(rule(enabled=False), event(), history, 1000).reason == "not_applicable"


def test_cooldown_uses_stream_time_per_stream():
    history = WatchHistory()
    history.record("door", 0.0, 5.0, now=1000)
    r = rule(stream=None, max_per_hour=100)
    assert decide(r, event(2, 10.0, 15.0), history, 1001).reason == "cooldown"  # 5 s later
    assert decide(r, event(3, 36.0, 40.0), history, 1001).fire  # 31 s of stream time later
    assert decide(r, event(4, 10.0, 15.0, stream="yard"), history, 1001).fire  # other stream
    # an event overlapping the fired one (a widened, merged slot) is the same scene
    assert decide(r, event(5, 3.0, 50.0), history, 1001).reason == "cooldown"


def test_rate_limit_uses_the_wall_clock():
    history = WatchHistory()
    r = rule(cooldown_s=0.0, max_per_hour=2)
    for i, now in enumerate((1000.0, 1010.0)):
        assert decide(r, event(i, i * 100.0, i * 100.0 + 5), history, now).fire
        history.record("door", i * 100.0, i * 100.0 + 5, now)
    assert decide(r, event(9, 900.0, 905.0), history, 1020.0).reason == "rate_limited"
    assert decide(r, event(9, 900.0, 905.0), history, 1000.0 + HOUR_S + 1).fire


def test_duration_condition():
    r = rule(condition=Condition("duration", 60.0), vector=None)
    assert not decide(r, event(end=59.0), WatchHistory(), 1000).fire
    long = decide(r, event(end=61.0), WatchHistory(), 1000)
    assert long.fire and long.score == 61.0 and long.threshold == 60.0


def test_gets_dark_fires_on_the_change_only():
    r = rule(condition=Condition("dark"), vector=None)
    h = WatchHistory()
    assert decide(r, event(luma=0.1, previous_luma=0.6), h, 1000).fire
    assert decide(r, event(luma=0.1, previous_luma=0.1), h, 1000).reason == "no_change"
    assert decide(r, event(luma=0.5, previous_luma=0.6), h, 1000).reason == "not_dark"
    assert decide(r, event(luma=None), h, 1000).reason == "no_brightness"
    light = rule(condition=Condition("light"), vector=None)
    assert decide(light, event(luma=0.7, previous_luma=0.05), h, 1000).fire


def test_verification_is_requested_only_when_asked():
    assert not decide(rule(), event(), WatchHistory(), 1000).needs_verification
    assert decide(rule(verify=True), event(), WatchHistory(), 1000).needs_verification


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("Yes.", True),
        ("yes, a bird", True),
        ("No", False),
        (" no.", False),
        ("Maybe", None),
        ("", None),
    ],
)
def test_yes_no_answers(answer, verdict):
    assert read_answer(answer) == verdict


def test_signature_round_trip_and_tamper():
    body = body_bytes({"b": 1, "a": [1, 2]})
    assert body == b'{"a":[1,2],"b":1}'
    header = sign("s3cret-s3cret-s3cret", body, 1_700_000_000)
    assert verify_signature("s3cret-s3cret-s3cret", header, body, now=1_700_000_010)
    assert not verify_signature("wrong-secret-wrong", header, body, now=1_700_000_010)
    assert not verify_signature("s3cret-s3cret-s3cret", header, body + b" ", now=1_700_000_010)
    # replaying an old capture fails the timestamp check
    assert not verify_signature("s3cret-s3cret-s3cret", header, body, now=1_700_001_000)
    assert not verify_signature("s3cret-s3cret-s3cret", "garbage", body)


def test_backoff_doubles_with_jitter_and_a_cap():
    rng = random.Random(0)
    delays = [backoff_s(n, 1.0, 20.0, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        full = min(20.0, 2 ** (n - 1))
        assert full / 2 <= delay <= full
