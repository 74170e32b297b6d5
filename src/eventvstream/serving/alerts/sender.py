"""The delivery loop every outbox channel shares: claim due deliveries, send, record the outcome.

A channel (webhooks, MQTT) only says how to send one delivery (:meth:`OutboxSender.send`) and
whether it can send at all right now (:meth:`OutboxSender.ready`, e.g. "the broker is
connected"). Everything else is here, once: a :class:`~.loop.WakeLoop` that wakes when new
alerts are committed or when the next retry falls due, a small pool so one slow receiver does not
hold up the rest, and the outcome written back to the outbox: delivered, or retried after a
jittered exponential backoff (``Retry-After`` honoured) until ``max_attempts``, then failed.
A bug while sending never loses a delivery: it counts as a failed attempt and stays pending.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from eventvstream.memory.outbox import Delivery, Outbox
from eventvstream.serving.alerts.loop import WakeLoop

log = logging.getLogger(__name__)

OnResult = Callable[[Delivery, bool, float], None]  # (delivery, delivered, seconds)


@dataclass(frozen=True)
class Attempt:
    """The outcome of one try: delivered, or why not and when to try again."""

    ok: bool
    error: str = ""
    retry_after_s: float | None = None  # the receiver's Retry-After, if it gave one
    final: bool = False  # retrying cannot help (e.g. a refused destination): fail now


def backoff_s(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number ``attempts`` (1 = the first retry): exponential, capped, and
    jittered to 50-100% so receivers coming back up are not hit by every sender at once."""
    return min(cap, base * 2 ** max(0, attempts - 1)) * (0.5 + rng.random() / 2)


class OutboxSender(ABC):
    """One channel's deliveries from the durable outbox. Subclasses set :attr:`channel`,
    implement :meth:`send` and call ``super().__init__`` once :meth:`send` can run."""

    channel: str

    def __init__(
        self,
        outbox: Outbox,
        *,
        workers: int,
        backoff_s: float,
        backoff_max_s: float,
        max_attempts: int | None,
        poll_s: float = 1.0,
        on_result: OnResult | None = None,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.outbox = outbox
        self.workers = workers
        self.backoff_base_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_attempts = max_attempts  # None: retry for as long as it takes
        self.poll_s = poll_s
        self.on_result = on_result
        self.gate = gate  # with replicas: "this replica still holds the alert role"
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"evs-{self.channel}")
        self._loop = WakeLoop(f"evs-{self.channel}-outbox", self._dispatch).start()

    # -- what a channel provides ---------------------------------------------------------------
    def ready(self) -> bool:
        """False while nothing can be sent (deliveries wait, no attempt is spent)."""
        return True

    @abstractmethod
    def send(self, delivery: Delivery) -> Attempt:
        """One attempt at one delivery (runs on a pool thread)."""

    # -- the loop ------------------------------------------------------------------------------
    def wake(self) -> None:
        self._loop.wake()

    def _dispatch(self) -> float:
        """Start every due delivery not already in flight; seconds until the next is due."""
        if not self.ready() or (self.gate is not None and not self.gate()):
            return self.poll_s
        with self._lock:
            busy = set(self._in_flight)
        room = self.workers * 2 - len(busy)
        if room > 0:
            for delivery in self.outbox.due(self.channel, time.time(), limit=room + len(busy)):
                if delivery.id in busy or room <= 0:
                    continue
                with self._lock:
                    self._in_flight.add(delivery.id)
                room -= 1
                self._pool.submit(self._deliver, delivery)
        upcoming = self.outbox.next_due(self.channel)
        if upcoming is None:
            return self.poll_s
        return min(self.poll_s, max(0.01, upcoming - time.time()))

    def _deliver(self, delivery: Delivery) -> None:
        started = time.perf_counter()
        try:
            attempt = self.send(delivery)
        except Exception as exc:  # never lose the delivery to a bug: it stays pending
            attempt = Attempt(False, f"{type(exc).__name__}: {exc}")
            log.exception("%s delivery %d failed unexpectedly", self.channel, delivery.id)
        try:
            self._record(delivery, attempt)
        finally:
            with self._lock:
                self._in_flight.discard(delivery.id)
            self.wake()
        if self.on_result is not None:
            self.on_result(delivery, attempt.ok, time.perf_counter() - started)

    def _record(self, delivery: Delivery, attempt: Attempt) -> None:
        if attempt.ok:
            self.outbox.delivered(delivery.id)
            return
        attempts = delivery.attempts + 1
        give_up = attempt.final or (self.max_attempts is not None and attempts >= self.max_attempts)
        delay = backoff_s(attempts, self.backoff_base_s, self.backoff_max_s, self._rng)
        if attempt.retry_after_s is not None:
            delay = max(delay, min(attempt.retry_after_s, self.backoff_max_s))
        self.outbox.retry(delivery.id, time.time() + delay, attempt.error, give_up=give_up)
        log.info(
            "%s delivery %d attempt %d: %s", self.channel, delivery.id, attempts, attempt.error
        )

    def idle(self) -> bool:
        with self._lock:
            return not self._in_flight

    def close(self) -> None:
        """Stop claiming; let attempts in flight finish (each is bounded by its timeout)."""
        self._loop.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
