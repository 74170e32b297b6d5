"""Webhook deliveries: signed JSON POSTs from the durable outbox, retried with backoff.

Every request carries

* ``X-EVS-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 with the watch's secret over
  ``"<t>." + body``. The timestamp is inside the signed bytes, so a captured request cannot be
  replayed later with a fresh time (receivers reject old ``t``, see :func:`verify_signature`);
* ``Idempotency-Key``: the alert's uid, the same on every retry and after a restart — delivery is
  at-least-once, and a receiver that remembers keys sees each alert exactly once.

A 2xx answer marks the delivery done. Anything else (refused connection, timeout, 5xx, 4xx) is
retried after ``backoff * 2^attempts`` (capped, with jitter; ``Retry-After`` is honoured) until
``webhook_max_attempts``, then the delivery is marked failed and stays in the table to inspect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from eventvstream.config import AlertSettings
from eventvstream.memory.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-EVS-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CHANNEL = "webhook"


def body_bytes(message: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted JSON."""
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance_s: float = 300.0, now: float | None = None
) -> bool:
    """What a receiver runs: the signature matches and its timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def backoff_s(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number ``attempts`` (1 = the first retry): exponential, capped, and
    jittered to 50-100% so receivers coming back up are not hit by every sender at once."""
    return min(cap, base * 2 ** max(0, attempts - 1)) * (0.5 + rng.random() / 2)


class WebhookSender:
    """A dispatcher thread that hands due deliveries to a small pool of senders."""

    def __init__(
        self,
        outbox: Outbox,
        settings: AlertSettings,
        *,
        on_result: Any = None,
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.on_result = on_result  # (delivery, ok, seconds) -> None, for metrics
        self._client = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
        self._pool = ThreadPoolExecutor(settings.webhook_workers, thread_name_prefix="evs-webhook")
        self._cond = threading.Condition()
        self._in_flight: set[int] = set()
        self._stopping = False
        self._rng = random.Random()
        self._thread = threading.Thread(target=self._run, name="evs-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            try:
                wait = self._dispatch()
            except Exception:
                log.exception("webhook dispatch failed")
                wait = 1.0
            with self._cond:
                if not self._stopping:
                    self._cond.wait(timeout=wait)

    def _dispatch(self) -> float:
        """Start every due delivery not already in flight; seconds until the next is due."""
        now = time.time()
        with self._cond:
            room = self.settings.webhook_workers * 2 - len(self._in_flight)
            busy = set(self._in_flight)
        if room > 0:
            for delivery in self.outbox.due(CHANNEL, now, limit=room + len(busy)):
                if delivery.id in busy or room <= 0:
                    continue
                with self._cond:
                    self._in_flight.add(delivery.id)
                room -= 1
                self._pool.submit(self._deliver, delivery)
        upcoming = self.outbox.next_due(CHANNEL)
        return 1.0 if upcoming is None else min(1.0, max(0.01, upcoming - time.time()))

    def _deliver(self, delivery: Delivery) -> None:
        started = time.perf_counter()
        ok, error, retry_after = False, "", None
        try:
            ok, error, retry_after = self.post(delivery)
        except Exception as exc:  # never lose the delivery to a bug: it stays pending
            error = f"{type(exc).__name__}: {exc}"
            log.exception("webhook delivery %d failed unexpectedly", delivery.id)
        try:
            if ok:
                self.outbox.delivered(delivery.id)
            else:
                attempts = delivery.attempts + 1
                give_up = attempts >= self.settings.webhook_max_attempts
                delay = backoff_s(
                    attempts,
                    self.settings.webhook_backoff_s,
                    self.settings.webhook_backoff_max_s,
                    self._rng,
                )
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.settings.webhook_backoff_max_s))
                self.outbox.retry(delivery.id, time.time() + delay, error, give_up=give_up)
                log.info("webhook delivery %d attempt %d: %s", delivery.id, attempts, error)
        finally:
            with self._cond:
                self._in_flight.discard(delivery.id)
                self._cond.notify()
        if self.on_result is not None:
            self.on_result(delivery, ok, time.perf_counter() - started)

    def post(self, delivery: Delivery) -> tuple[bool, str, float | None]:
        """One attempt: (delivered, error text, Retry-After seconds)."""
        body = body_bytes(delivery.alert.message())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "eventvstream-alerts",
            IDEMPOTENCY_HEADER: delivery.alert.uid,
            "X-EVS-Delivery-Attempt": str(delivery.attempts + 1),
        }
        secret = delivery.target.get("secret")
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body, int(time.time()))
        try:
            response = self._client.post(delivery.target["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}", None
        if 200 <= response.status_code < 300:
            return True, "", None
        retry_after = response.headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return False, f"HTTP {response.status_code}", seconds

    def idle(self) -> bool:
        with self._cond:
            return not self._in_flight

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()
