"""Webhook deliveries: signed JSON POSTs from the durable outbox, retried with backoff.

Every request carries

* ``X-EVS-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 with the watch's secret over
  ``"<t>." + body``. The timestamp is inside the signed bytes, so a captured request cannot be
  replayed later with a fresh time (receivers reject old ``t``, see :func:`verify_signature`);
* ``Idempotency-Key``: the alert's uid, the same on every retry and after a restart — delivery is
  at-least-once, and a receiver that remembers keys sees each alert exactly once.

A 2xx answer marks the delivery done. Anything else (refused connection, timeout, 5xx, 4xx, a
redirect) is retried after ``backoff * 2^attempts`` (capped, with jitter; ``Retry-After`` is
honoured) until ``webhook_max_attempts``, then the delivery is marked failed and stays in the
table to inspect (the loop is :class:`.sender.OutboxSender`'s). A destination the operator's
policy refuses (:mod:`.egress`: loopback, private, metadata addresses) fails at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from eventvstream.config import AlertSettings
from eventvstream.memory.outbox import Delivery, Outbox
from eventvstream.serving.alerts.egress import WebhookPolicy, guarded_client, refused
from eventvstream.serving.alerts.sender import Attempt, OutboxSender

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


class WebhookSender(OutboxSender):
    """Signed POSTs of the ``webhook`` deliveries, through a client that connects only to
    destinations :mod:`.egress` allows."""

    channel = CHANNEL

    def __init__(
        self, outbox: Outbox, settings: AlertSettings, *, on_result: Any = None, gate: Any = None
    ) -> None:
        self.settings = settings
        self.policy = WebhookPolicy.from_settings(settings)
        self._client = guarded_client(self.policy, settings.webhook_timeout_s)
        super().__init__(
            outbox,
            workers=settings.webhook_workers,
            backoff_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            max_attempts=settings.webhook_max_attempts,
            on_result=on_result,
            gate=gate,
        )

    def send(self, delivery: Delivery) -> Attempt:
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
            refusal = refused(exc)
            if refusal is not None:
                log.warning("webhook delivery %d refused: %s", delivery.id, refusal)
                return Attempt(False, f"refused: {refusal}", final=True)
            return Attempt(False, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Attempt(True)
        retry_after = response.headers.get("retry-after")
        # ASCII digits only: str.isdigit takes "²", which float() refuses (a receiver's header)
        seconds = (
            float(retry_after)
            if retry_after and retry_after.isascii() and retry_after.isdigit()
            else None
        )
        return Attempt(False, f"HTTP {response.status_code}", seconds)

    def close(self) -> None:
        super().close()
        self._client.close()
