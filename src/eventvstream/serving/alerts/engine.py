"""The alert engine: follows the memory bank's change sequence and turns changes into alerts.

Why follow the sequence instead of acting inside the ingest callbacks: every change to an event
(stored, merged, described, captioned) bumps the store's global sequence number in the same
commit. The engine keeps a cursor — "evaluated up to seq N" — committed together with the alerts
it raised (:meth:`Outbox.record`). A crash anywhere therefore loses nothing and duplicates
nothing: on restart, the changes after the cursor are evaluated again, and a watch alerts on an
event at most once (a unique key). The ingest listener methods (``event_stored``,
``event_merged``, ``caption_done``) only wake the follower, so ingest never waits on alert work;
``event_stored`` also keeps the event's keyframe and brightness while its pixels still exist.

Each changed event is evaluated against its owner's watches (:func:`matching.decide`) with
whatever description it has at that moment: first its label text, later its caption. Optional
verification asks the decoder a yes/no question. New alerts go to the outbox (webhooks, MQTT,
durable) and to the hub (SSE, WebSockets); lifecycle messages (new/update/end) go to MQTT and
the hub as they happen.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from eventvstream.config import AlertSettings
from eventvstream.memory.alertdb import AlertDatabase
from eventvstream.memory.outbox import NewAlert, Outbox
from eventvstream.memory.rows import EventRow
from eventvstream.memory.watches import WatchStore
from eventvstream.pipeline.ingest import BaseListener, CaptionDone, StoredEvent
from eventvstream.serving.alerts import keyframes, verify
from eventvstream.serving.alerts.hub import AlertHub
from eventvstream.serving.alerts.loop import WakeLoop
from eventvstream.serving.alerts.matching import HOUR_S, EventView, WatchHistory, decide
from eventvstream.serving.alerts.messages import Lifecycle, alert_payload, keyframe_url
from eventvstream.serving.alerts.watches import WatchService
from eventvstream.serving.alerts.webhook import WebhookSender

log = logging.getLogger(__name__)

BATCH = 500
CURSOR_SAVE_S = 1.0
POLL_S = 0.5  # the follower also looks by itself this often (a missed wake-up costs this much)


class AlertEngine(BaseListener):
    """An :class:`~eventvstream.pipeline.ingest.IngestListener` (register it with
    ``Engine.add_listener``) that owns the alert tables, the follower and the deliveries."""

    def __init__(
        self,
        settings: AlertSettings,
        bank: Any,
        embedder: Any,
        decoder: Any = None,
        *,
        metrics: Any = None,
    ) -> None:
        self.settings = settings
        self.bank = bank
        self.decoder = decoder
        self.metrics = metrics
        self.db = AlertDatabase(bank.store.backend)  # the alert tables live with the events
        self.outbox = Outbox(self.db)
        self.frames = keyframes.KeyframeStore(self.db, Path(bank.dir) / "keyframes")
        self.mqtt: Any = None
        if settings.mqtt.host:
            from eventvstream.serving.alerts.mqtt import MqttPublisher

            self.mqtt = MqttPublisher(settings.mqtt, self.outbox)
        self.watches = WatchService(
            WatchStore(self.db), settings, embedder, mqtt_on=self.mqtt is not None
        )
        self.hub = AlertHub()
        self.lifecycle = Lifecycle()
        self.history: dict[str, WatchHistory] = {}
        self._load_history()
        cursor = self.db.state("cursor")
        # First start on an existing memory: judge what happens from now on, not the past.
        self.cursor = int(cursor) if cursor is not None else self._head()
        if cursor is None:
            self.outbox.record([], cursor=self.cursor)
        self._cursor_saved = time.monotonic()
        self.webhooks = WebhookSender(self.outbox, settings, on_result=self._delivered)
        self._loop = WakeLoop("evs-alerts", self._follow, error_wait_s=POLL_S).start()

    # -- ingest listener (pipeline/ingest.py; any thread, never blocks on alert work) ----------
    def event_stored(self, event: StoredEvent) -> None:
        """Keep the keyframe and brightness while the pixels exist (only for owners with
        watches), then wake the follower."""
        if event.owner in self.watches.owners():
            try:
                self.frames.capture(event.event, event.id, event.stream, event.owner)
            except Exception:
                log.exception("keeping the keyframe of event %s failed", event.id)
        self.wake()

    def event_merged(self, event: StoredEvent) -> None:
        self.wake()

    def caption_done(self, caption: CaptionDone) -> None:
        self.wake()

    def wake(self) -> None:
        self._loop.wake()

    # -- the follower --------------------------------------------------------------------------
    def _follow(self) -> float:
        """Evaluate every change so far; then sleep until woken (or POLL_S)."""
        while self._catch_up() and not self._loop.stopping:
            pass
        return POLL_S

    def _head(self) -> int:
        return int(self.bank.store.current_seq())

    def _changed(self, head: int) -> tuple[list[int], int]:
        """Ids changed after the cursor (up to ``head``), in sequence order, and the cursor
        after them; never splits one commit's changes between two batches."""
        rows = self.db.rows(
            "SELECT id, seq FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (self.cursor, head, BATCH),
        )
        if len(rows) < BATCH:
            return [r[0] for r in rows], head
        last = rows[-1][1]
        kept = [r for r in rows if r[1] < last]
        if kept:
            return [r[0] for r in kept], last - 1
        same = self.db.rows("SELECT id FROM events WHERE seq = ?", (last,))
        return [r[0] for r in same], last

    def _catch_up(self) -> bool:
        """Evaluate one batch of changes; True when there may be more."""
        head = self._head()
        if head <= self.cursor:
            return False
        ids, cursor = self._changed(head)
        if not self.watches.owners() and not self._lifecycle_wanted():
            ids = []  # nobody to tell: move the cursor without reading the rows
        rows = self.bank.store.get_many(ids)
        ordered = [rows[i] for i in ids if i in rows]
        now = time.time()
        new: list[NewAlert] = []
        for row in ordered:
            new.extend(self._evaluate(row, now))
        # The cursor is committed with any alerts; with none, at most once a second (a crash
        # re-evaluates a second of changes: harmless, a watch alerts on an event only once).
        stored: list[Any] = []
        if new or time.monotonic() - self._cursor_saved >= CURSOR_SAVE_S:
            stored = self.outbox.record(new, cursor=cursor)
            self._cursor_saved = time.monotonic()
        self.cursor = cursor
        for row in ordered:
            self._publish_lifecycle(row)
        for alert in stored:
            self.history.setdefault(alert.watch_id, WatchHistory())
            if self.metrics is not None:
                self.metrics.add("alerts")
            self.hub.publish(alert.owner, alert.stream, "alert", alert.message())
        if stored:
            self.webhooks.wake()
            if self.mqtt is not None:
                self.mqtt.wake()
        return cursor < head

    def _evaluate(self, row: EventRow, now: float) -> list[NewAlert]:
        rules = self.watches.rules_for(row.owner)
        if not rules:
            return []
        luma, previous = self.frames.brightness(row.id)
        view = EventView(
            row.id,
            row.owner,
            row.stream,
            row.start,
            row.end,
            row.updated,
            vector=row.text_embedding,
            luma=luma,
            previous_luma=previous,
        )
        url = self._keyframe_url(row)
        found = []
        for rule, watch in rules:
            history = self.history.setdefault(rule.id, WatchHistory())
            decision = decide(rule, view, history, now)
            if not decision.fire:
                continue
            verified, answer = None, None
            if decision.needs_verification:
                verified, answer = verify.ask(self.decoder, watch.spec["text"], row, self.settings)
                if verified is False:
                    continue
            history.record(row.stream, row.start, row.end, now)
            payload = alert_payload(rule, watch.spec, row, url, decision, verified, answer, now)
            found.append(
                NewAlert(
                    rule.id,
                    row.owner,
                    row.stream,
                    row.id,
                    payload,
                    self.watches.deliveries(watch),
                )
            )
        return found

    def _keyframe_url(self, row: EventRow) -> str | None:
        if not self.frames.has(row.id):
            return None
        return keyframe_url(self.settings.public_url, row)

    def _lifecycle_wanted(self) -> bool:
        return bool(self.hub.count or (self.mqtt is not None and self.settings.mqtt.events))

    def _publish_lifecycle(self, row: EventRow) -> None:
        if not self._lifecycle_wanted():
            return
        for message in self.lifecycle.changes(row, self._keyframe_url(row)):
            body = message | {"type": "event." + message["type"]}
            self.hub.publish(row.owner, row.stream, "event", body)
            if self.mqtt is not None:
                self.mqtt.lifecycle(message)

    def _load_history(self) -> None:
        """Cooldown and rate-limit state from the alerts of the last day."""
        for watch_id, stream, start, end, created in self.outbox.recent_fires(
            time.time() - 24 * HOUR_S
        ):
            history = self.history.setdefault(watch_id, WatchHistory())
            history.fired_at.append(created)
            history.last_span[stream] = (start, end)

    def _delivered(self, delivery: Any, ok: bool, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.add("webhook_deliveries" if ok else "webhook_failures")
        if ok:
            self.metrics.observe(
                "alert_delivery_s", max(0.0, time.time() - float(delivery.alert.created))
            )

    # -- reading -------------------------------------------------------------------------------
    def keyframe(self, owner: str, stream: str, event_id: int) -> Path | None:
        row = self.bank.get(event_id)
        if row is None or row.owner != owner or row.stream != stream:
            return None
        return self.frames.path(event_id)

    def pending(self) -> dict[str, int]:
        return {
            "webhook": self.outbox.pending("webhook"),
            "mqtt": self.outbox.pending("mqtt"),
        }

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every change so far is evaluated (tests, drain)."""
        deadline = time.monotonic() + timeout
        target = self._head()
        self.wake()
        while self.cursor < target and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.cursor >= target

    def close(self) -> None:
        self._loop.stop(timeout_s=10)
        with contextlib.suppress(Exception):  # best effort: the cursor is re-derived safely
            self.outbox.record([], cursor=self.cursor)
        self.webhooks.close()
        if self.mqtt is not None:
            self.mqtt.close()
