"""The delivery loop every outbox channel shares (serving/alerts/sender.py), on a real outbox
(SQLite) with a scripted channel: delivered, retried with backoff and ``Retry-After``, given up
after ``max_attempts`` or at once for a final refusal, and a crash inside ``send`` never loses
the delivery. The webhook and MQTT tests run the same loop against real receivers."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from eventvstream.config import MemorySettings
from eventvstream.memory import MemoryBank
from eventvstream.memory.alertdb import AlertDatabase
from eventvstream.memory.outbox import Delivery, NewAlert, Outbox
from eventvstream.serving.alerts.sender import Attempt, OutboxSender


class Scripted(OutboxSender):
    """Answers each attempt with the next outcome of ``script`` (then the last one forever)."""

    channel = "test"

    def __init__(self, outbox: Outbox, script: list[Callable[[], Attempt]], **kw) -> None:
        self.script = script
        self.calls: list[tuple[int, float]] = []  # (delivery attempts so far, when)
        self.lock = threading.Lock()
        defaults = dict(workers=2, backoff_s=0.05, backoff_max_s=0.2, max_attempts=4)
        super().__init__(outbox, **(defaults | kw))

    def send(self, delivery: Delivery) -> Attempt:
        with self.lock:
            self.calls.append((delivery.attempts, time.monotonic()))
            step = self.script[min(len(self.calls), len(self.script)) - 1]
        return step()


@pytest.fixture(autouse=True)
def _close_banks():
    yield
    while _BANKS:
        _BANKS.pop().close()


_BANKS: list[MemoryBank] = []  # the alert tables live in the bank's store: open for the test


def outbox_with_one_alert(tmp_path) -> tuple[Outbox, int]:
    bank = MemoryBank(MemorySettings(data_dir=tmp_path))
    _BANKS.append(bank)
    outbox = Outbox(AlertDatabase(bank.store.backend))
    (alert,) = outbox.record([NewAlert("w_1", "k1", "door", 7, {"why": {}}, [("test", {})])])
    return outbox, alert.id


def wait_status(outbox: Outbox, alert_id: int, want: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (status,) = outbox.delivery_status(alert_id)
        if status["status"] == want:
            return status
        time.sleep(0.01)
    raise AssertionError(f"never {want!r}: {outbox.delivery_status(alert_id)}")


def run_until(tmp_path, script: list[Callable[[], Attempt]], want: str, **kw):
    """One alert through a :class:`Scripted` sender until its delivery is ``want``; returns the
    delivery's status and the sender's calls."""
    outbox, alert_id = outbox_with_one_alert(tmp_path)
    sender = Scripted(outbox, script, **kw)
    try:
        return wait_status(outbox, alert_id, want), sender.calls
    finally:
        sender.close()


def gaps(calls: list[tuple[int, float]]) -> list[float]:
    return [b - a for (_, a), (_, b) in itertools.pairwise(calls)]


def test_retried_with_backoff_then_delivered(tmp_path):
    fail = lambda: Attempt(False, "HTTP 503")  # noqa: E731
    status, calls = run_until(tmp_path, [fail, fail, lambda: Attempt(True)], "delivered")
    assert status["attempts"] == 3 and status["last_error"] is None
    assert [a for a, _ in calls] == [0, 1, 2]  # each try sees the attempts so far
    assert all(g >= 0.02 for g in gaps(calls)), calls  # backoff 0.05 * 2^n, jittered >= 50%


def test_gives_up_after_max_attempts_and_honours_retry_after(tmp_path):
    script = [lambda: Attempt(False, "HTTP 429", retry_after_s=0.15)]
    status, calls = run_until(tmp_path, script, "failed")
    assert status["attempts"] == 4 and status["last_error"] == "HTTP 429"
    assert len(calls) == 4 and all(g >= 0.14 for g in gaps(calls)), calls


def test_a_final_refusal_fails_at_once(tmp_path):
    script = [lambda: Attempt(False, "refused: private", final=True)]
    status, calls = run_until(tmp_path, script, "failed")
    assert status["attempts"] == 1 and len(calls) == 1


def test_a_bug_in_send_keeps_the_delivery_pending(tmp_path):
    def crash() -> Attempt:
        raise KeyError("url")

    script = [crash, lambda: Attempt(True)]
    status, calls = run_until(tmp_path, script, "delivered", max_attempts=None)
    assert status["attempts"] == 2 and len(calls) == 2


def test_nothing_is_sent_while_not_ready(tmp_path):
    outbox, alert_id = outbox_with_one_alert(tmp_path)
    ready = threading.Event()

    class Gated(Scripted):
        def ready(self) -> bool:
            return ready.is_set()

    sender = Gated(outbox, [lambda: Attempt(True)], poll_s=0.05)
    try:
        time.sleep(0.3)
        assert sender.calls == [] and outbox.pending("test") == 1  # no attempt spent
        ready.set()
        sender.wake()
        assert wait_status(outbox, alert_id, "delivered")["attempts"] == 1
    finally:
        sender.close()
