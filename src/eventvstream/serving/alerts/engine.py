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

With replicas on one database (``role`` given) exactly one replica evaluates and delivers: the
holder of the ``alerts`` role lease (``serving/roles.py``, kept by the replica heartbeat and
taken over within a heartbeat when its holder dies). It reads the cursor from the database when
it takes the role, and every commit of alerts and cursor is fenced by the role row, so a
takeover neither skips nor repeats a change; the alert's unique key and its idempotency key
cover the rest (a delivery in flight when its sender died is sent again with the same key).
Events stored through any replica are in the change sequence it follows. Every replica keeps
capturing keyframes for the events it stores, reloads watches changed through the others
(``WatchService.refresh``), and feeds its own live listeners from the alert log
(:mod:`.fanout`).
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
from eventvstream.memory.roles import RoleLost
from eventvstream.memory.rows import EventRow
from eventvstream.memory.watches import WatchStore
from eventvstream.pipeline.ingest import BaseListener, CaptionDone, StoredEvent
from eventvstream.serving.alerts import keyframes, verify
from eventvstream.serving.alerts.fanout import Fanout
from eventvstream.serving.alerts.hub import AlertHub
from eventvstream.serving.alerts.loop import WakeLoop
from eventvstream.serving.alerts.matching import HOUR_S, EventView, WatchHistory, decide
from eventvstream.serving.alerts.messages import Lifecycle, alert_payload, keyframe_url
from eventvstream.serving.alerts.watches import WatchService
from eventvstream.serving.alerts.webhook import WebhookSender
from eventvstream.serving.roles import SOLO, RoleHolder

log = logging.getLogger(__name__)

BATCH = 500
CURSOR_SAVE_S = 1.0
POLL_S = 0.5  # the follower also looks by itself this often (a missed wake-up costs this much)
REPLICA_POLL_S = 0.25  # with replicas, changes made elsewhere wake nobody here: look more often
FRAME_WAIT_S = 5.0  # how long an event waits for its keyframe (see below; 2 s was short at load 10)


class AlertEngine(BaseListener):
    """An :class:`~eventvstream.pipeline.ingest.IngestListener` (register it with
    ``Engine.add_listener``) that owns the alert tables, the follower and the deliveries.

    ``role``: given with replicas on one database (``serving/roles.py``). Then this replica
    evaluates and delivers only while it holds the role (taking the cursor over from the
    database when it gets it), its live listeners are fed by a :class:`~.fanout.Fanout`, and
    keyframes are captured here for events stored here whoever evaluates them. Without it the
    engine is alone on its database and evaluates from the start."""

    def __init__(
        self,
        settings: AlertSettings,
        bank: Any,
        embedder: Any,
        decoder: Any = None,
        *,
        metrics: Any = None,
        role: RoleHolder | None = None,
    ) -> None:
        self.settings = settings
        self.bank = bank
        self.decoder = decoder
        self.metrics = metrics
        self.role = role or SOLO
        self.replicated = role is not None
        self.db = AlertDatabase(bank.store.backend)  # the alert tables live with the events
        self.outbox = Outbox(self.db)
        self.frames = keyframes.KeyframeStore(self.db, Path(bank.dir) / "keyframes")
        self.mqtt: Any = None
        self.webhooks: WebhookSender | None = None
        self.watches = WatchService(
            WatchStore(self.db), settings, embedder, mqtt_on=bool(settings.mqtt.host)
        )
        self.hub = AlertHub()
        self.lifecycle = Lifecycle()
        self.history: dict[str, WatchHistory] = {}
        self.cursor: int | None = None  # evaluated up to here; only while leading
        self.leading = False
        self.fanout: Fanout | None = None
        self.poll_s = POLL_S
        if self.replicated:
            self.poll_s = REPLICA_POLL_S
            self.fanout = Fanout(self.db, self.outbox, self.hub, bank.store, self._keyframe_url)
        else:
            self._lead()
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

    # -- leading: the one evaluator and sender of the database ---------------------------------
    def _lead(self) -> None:
        """Start evaluating: the cursor and the cooldown history from the database (where the
        last holder committed them), then the outbox senders."""
        cursor = self.db.state("cursor")
        # First start on an existing memory: judge what happens from now on, not the past.
        self.cursor = int(cursor) if cursor is not None else self._head()
        if cursor is None:
            self.outbox.record([], cursor=self.cursor, fence=self.role.fence)
        self._cursor_saved = time.monotonic()
        self.history = {}
        self._load_history()
        self.lifecycle = Lifecycle()
        if self.settings.mqtt.host:
            from eventvstream.serving.alerts.mqtt import MqttPublisher

            self.mqtt = MqttPublisher(self.settings.mqtt, self.outbox, gate=self._gate())
        self.webhooks = WebhookSender(
            self.outbox, self.settings, on_result=self._delivered, gate=self._gate()
        )
        self.leading = True
        if self.replicated:
            log.info("alerts: evaluating from change %d (this replica holds the role)", self.cursor)

    def _gate(self) -> Any:
        """What a sender asks before each round: with replicas, "do we still hold the role?"."""
        return self.role.held if self.replicated else None

    def _step_down(self, stopping: bool = False) -> None:
        """Stop evaluating and sending: the role went to another replica, or (``stopping``)
        this server closes. Only a stopping server tells MQTT ``stopped``: after a lost role it
        would land after the new holder's ``online``."""
        self.leading = False
        webhooks, mqtt, self.webhooks, self.mqtt = self.webhooks, self.mqtt, None, None
        if webhooks is not None:
            webhooks.close()
        if mqtt is not None:
            mqtt.close(announce=stopping)
        if self.replicated:
            log.info("alerts: no longer evaluating on this replica")

    # -- the follower --------------------------------------------------------------------------
    def _follow(self) -> float:
        """Evaluate every change so far (while leading) and feed this replica's live listeners;
        then sleep until woken (or the poll interval)."""
        self.watches.refresh()  # a watch changed through another process
        try:
            if self.replicated:
                held = self.role.held()
                if held and not self.leading:
                    self._lead()
                elif not held and self.leading:
                    self._step_down()
            while self.leading and self._catch_up() and not self._loop.stopping:
                pass
        except RoleLost:
            self._step_down()
        if self.fanout is not None:
            while self.fanout.step() and not self._loop.stopping:
                pass
        return self.poll_s

    def _head(self) -> int:
        return int(self.bank.store.current_seq())

    def _catch_up(self) -> bool:
        """Evaluate one batch of changes; True when there may be more."""
        assert self.cursor is not None
        head = self._head()
        if head <= self.cursor:
            return False
        ids, cursor = self.db.changed(self.cursor, head, BATCH)
        if not self.watches.owners() and not self._lifecycle_wanted():
            ids = []  # nobody to tell: move the cursor without reading the rows
        rows = self.bank.store.get_many(ids)
        ordered = [rows[i] for i in ids if i in rows]
        held_back = False
        if self.replicated:
            ordered, cursor, held_back = self._hold_back_unframed(ordered, cursor)
        now = time.time()
        new: list[NewAlert] = []
        for row in ordered:
            new.extend(self._evaluate(row, now))
        # The cursor is committed with any alerts; with none, at most once a second (a crash
        # re-evaluates a second of changes: harmless, a watch alerts on an event only once).
        stored: list[Any] = []
        if new or time.monotonic() - self._cursor_saved >= CURSOR_SAVE_S:
            stored = self.outbox.record(new, cursor=cursor, fence=self.role.fence)
            self._cursor_saved = time.monotonic()
        self.cursor = cursor
        for row in ordered:
            self._publish_lifecycle(row)
        for alert in stored:
            self.history.setdefault(alert.watch_id, WatchHistory())
            if self.metrics is not None:
                self.metrics.add("alerts")
            if self.fanout is None:  # with replicas, every replica's fan-out publishes it
                self.hub.publish(alert.owner, alert.stream, "alert", alert.message())
        if stored:
            if self.webhooks is not None:
                self.webhooks.wake()
            if self.mqtt is not None:
                self.mqtt.wake()
        return cursor < head and not held_back

    def _hold_back_unframed(
        self, rows: list[EventRow], cursor: int
    ) -> tuple[list[EventRow], int, bool]:
        """With replicas an event is often stored by another replica, which keeps its keyframe
        and brightness (``event_stored``) in a second commit just after the event's. Judge a
        watched owner's new event only once that is there (or ``FRAME_WAIT_S`` after it was
        stored, for an event that has no pixels): stop the batch before the first one still
        without it. (rows, cursor after them, whether anything was held back)"""
        owners = self.watches.owners()
        now = time.time()
        for row in rows:
            if (
                row.owner in owners
                and row.merge_count == 0
                and now - row.created < FRAME_WAIT_S
                and not self.frames.known(row.id)
            ):
                return [r for r in rows if r.seq < row.seq], row.seq - 1, True
        return rows, cursor, False

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
        """Lifecycle messages for the hub (alone on the database; with replicas the fan-out
        publishes them) or MQTT (the role holder's)."""
        hub = self.fanout is None and self.hub.count
        return bool(hub or (self.mqtt is not None and self.settings.mqtt.events))

    def _publish_lifecycle(self, row: EventRow) -> None:
        if not self._lifecycle_wanted():
            return
        for message in self.lifecycle.changes(row, self._keyframe_url(row)):
            if self.fanout is None:
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
        """Wait until every change so far is evaluated here (tests, drain); False when this
        replica is not the evaluator."""
        deadline = time.monotonic() + timeout
        target = self._head()
        self.wake()
        while not self._evaluated(target) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._evaluated(target)

    def _evaluated(self, target: int) -> bool:
        cursor = self.cursor
        return self.leading and cursor is not None and cursor >= target

    def close(self) -> None:
        self._loop.stop(timeout_s=10)
        if self.leading and self.cursor is not None:
            with contextlib.suppress(Exception):  # best effort: the cursor is re-derived safely
                self.outbox.record([], cursor=self.cursor, fence=self.role.fence)
        self._step_down(stopping=True)
