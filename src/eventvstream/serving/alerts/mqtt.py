"""MQTT: alerts and event lifecycle messages on Frigate-shaped topics (paho-mqtt).

Topics (``<prefix>`` is ``alerts.mqtt.topic_prefix``, default ``evs``):

* ``<prefix>/available`` — ``online`` (retained) on every connect, ``stopped`` on a clean stop,
  ``offline`` from the broker (the last will) when the server vanishes;
* ``<prefix>/events`` — ``{"type": "new" | "update" | "end", "before": …, "after": …}`` per event;
* ``<prefix>/<stream>/caption`` — the stream's latest description (retained: it is state);
* ``<prefix>/alerts`` and ``<prefix>/<stream>/alerts`` — each alert (the webhook body).

Alerts come from the durable outbox (:class:`.sender.OutboxSender`'s loop) and count as delivered
only when the broker acknowledges them (QoS 1 PUBACK); until then they stay pending and are
retried, across restarts too. Lifecycle
messages are best effort (published while connected, QoS 1).

With replicas, a publisher exists only on the holder of the ``alerts`` role (the engine makes
it when it takes the role and closes it when it loses it); a lost role closes it without the
``stopped`` message, which would land after the new holder's ``online``
(``tests/e2e/test_replica_mqtt.py``, ``tests/integration/test_alerts_mqtt_replicas.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import threading
from typing import Any

from eventvstream.config import MqttSettings
from eventvstream.memory.outbox import Delivery, Outbox
from eventvstream.serving.alerts.sender import Attempt, OutboxSender

log = logging.getLogger(__name__)

CHANNEL = "mqtt"
RETRY_S = 2.0
ACK_TIMEOUT_S = 5.0


def topic_segment(stream: str) -> str:
    """Stream ids may not contain MQTT wildcards or separators (their pattern forbids them)."""
    return stream.replace("/", "_").replace("+", "_").replace("#", "_")


class MqttPublisher(OutboxSender):
    """The ``mqtt`` deliveries (one at a time, in order; retried every couple of seconds for as
    long as the broker stays away) and the best-effort lifecycle messages."""

    channel = CHANNEL

    def __init__(self, settings: MqttSettings, outbox: Outbox, *, gate: Any = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.settings = settings
        self.prefix = settings.topic_prefix.rstrip("/")
        self.connected = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=settings.client_id
        )
        self.client.will_set(f"{self.prefix}/available", "offline", qos=1, retain=True)
        if settings.username:
            self.client.username_pw_set(settings.username, os.environ.get(settings.password_env))
        if settings.tls:
            self.client.tls_set(
                ca_certs=str(settings.tls_ca_certs) if settings.tls_ca_certs else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            self.client.tls_insecure_set(settings.tls_insecure)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._stopping = False
        super().__init__(
            outbox,
            workers=1,
            backoff_s=RETRY_S,
            backoff_max_s=RETRY_S,
            max_attempts=None,
            poll_s=RETRY_S,
            gate=gate,
        )
        self.client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        self.client.loop_start()

    # -- connection ----------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker refused the connection: %s", reason)
            return
        log.info("MQTT connected to %s:%d", self.settings.host, self.settings.port)
        client.publish(f"{self.prefix}/available", "online", qos=1, retain=True)
        self.connected.set()
        self.wake()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()
        if not self._stopping:
            log.warning("MQTT disconnected (%s); reconnecting", reason)

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, topic: str, payload: Any, *, retain: bool = False) -> Any:
        """Best effort: dropped (None) while disconnected."""
        if not self.connected.is_set():
            return None
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        return self.client.publish(
            f"{self.prefix}/{topic}", data, qos=self.settings.qos, retain=retain
        )

    def lifecycle(self, message: dict[str, Any]) -> None:
        """An ``events`` message; a caption also updates ``<stream>/caption``."""
        if not self.settings.events:
            return
        self.publish("events", message)
        after = message.get("after") or {}
        caption = after.get("caption")
        before = message.get("before") or {}
        if caption and caption != before.get("caption"):
            self.publish(f"{topic_segment(after['stream'])}/caption", caption, retain=True)

    # -- alerts from the outbox (the loop is OutboxSender's) ---------------------------------
    def ready(self) -> bool:
        return self.connected.is_set()

    def send(self, delivery: Delivery) -> Attempt:
        """Published on both alert topics; delivered when the broker acknowledges it."""
        message = delivery.alert.message()
        info = self.publish("alerts", message)
        self.publish(f"{topic_segment(delivery.alert.stream)}/alerts", message)
        if info is None:
            return Attempt(False, "broker not connected")
        try:
            info.wait_for_publish(ACK_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            return Attempt(False, f"publish failed: {exc}")
        return Attempt(True) if info.is_published() else Attempt(False, "no broker PUBACK")

    def close(self, announce: bool = True) -> None:
        """Stop sending and disconnect. ``announce``: say ``stopped`` on ``available`` first
        (this server is stopping). A replica that only lost the alerts role passes False: the
        new holder has said (or is about to say) ``online``, and a late ``stopped`` would
        overwrite that retained state; the clean disconnect also keeps the broker from sending
        the last will."""
        self._stopping = True
        super().close()
        if announce and self.connected.is_set():
            info = self.client.publish(f"{self.prefix}/available", "stopped", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()
