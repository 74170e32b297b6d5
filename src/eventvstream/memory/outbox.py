"""The alert log and its durable outbox: at-least-once delivery across crashes.

An alert and one delivery row per channel (webhook, mqtt) are written in ONE transaction, together
with the change-sequence cursor the alert engine has evaluated up to. So after a ``kill -9``
either the alert and its deliveries exist (and pending deliveries are retried on start), or
neither does and the cursor has not moved (the event is evaluated again). ``UNIQUE(watch_id,
event_id)`` makes that re-evaluation idempotent: a watch alerts on an event at most once, and the
alert's ``uid`` is the idempotency key every retry carries.

With replicas on one database only the holder of the alert role records alerts, and each
:meth:`Outbox.record` first runs the role's *fence* (``memory/roles.py``), which locks the role
row until the commit. So alert transactions never overlap, and alert ids are handed out in
commit order: a replica following the log by id (:meth:`Outbox.since`) never skips one that
commits late.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventvstream.memory.alertdb import AlertDatabase

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class NewAlert:
    watch_id: str
    owner: str
    stream: str
    event_id: int
    payload: dict[str, Any]
    deliveries: list[tuple[str, dict[str, Any]]]  # (channel, target)


@dataclass(frozen=True)
class AlertRecord:
    id: int
    uid: str
    watch_id: str
    owner: str
    stream: str
    event_id: int
    payload: dict[str, Any]
    created: float

    def message(self) -> dict[str, Any]:
        """The alert as every channel shows it (the payload names its id and idempotency key)."""
        return {"type": "alert", **self.payload}


@dataclass(frozen=True)
class Delivery:
    id: int
    channel: str
    target: dict[str, Any]
    attempts: int
    alert: AlertRecord


_ALERT = "a.id, a.uid, a.watch_id, a.owner, a.stream, a.event_id, a.payload, a.created"


def _alert(row: tuple[Any, ...]) -> AlertRecord:
    return AlertRecord(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7])


class Outbox:
    def __init__(self, db: AlertDatabase) -> None:
        self.db = db

    def record(
        self,
        alerts: list[NewAlert],
        cursor: int | None = None,
        *,
        fence: Callable[[Any], None] | None = None,
    ) -> list[AlertRecord]:
        """Store new alerts and their deliveries (skipping any a watch already raised for that
        event) and, in the same commit, the evaluated-up-to cursor. Returns the new ones.
        ``fence(conn)`` runs first in the transaction and may raise to abort it (the alert role
        was lost)."""
        now = time.time()
        stored: list[AlertRecord] = []
        with self.db.write() as conn:
            if fence is not None:
                fence(conn)
            for alert in alerts:
                uid = uuid.uuid4().hex
                payload = alert.payload | {"idempotency_key": uid}
                # The same on both backends: a watch alerts on an event once (re-evaluation
                # after a crash, or two replicas evaluating the same change, add nothing).
                inserted = conn.execute(
                    "INSERT INTO alerts (uid, watch_id, owner, stream, event_id, payload, "
                    "created) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                    (
                        uid,
                        alert.watch_id,
                        alert.owner,
                        alert.stream,
                        alert.event_id,
                        json.dumps(payload),
                        now,
                    ),
                ).fetchall()
                if not inserted:
                    continue
                alert_id = int(inserted[0][0])
                payload = {"alert_id": alert_id, **payload}
                conn.execute(
                    "UPDATE alerts SET payload = ? WHERE id = ?", (json.dumps(payload), alert_id)
                )
                for channel, target in alert.deliveries:
                    conn.execute(
                        "INSERT INTO deliveries (alert_id, channel, target, status, next_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (alert_id, channel, json.dumps(target), PENDING, now),
                    )
                stored.append(
                    AlertRecord(
                        alert_id,
                        uid,
                        alert.watch_id,
                        alert.owner,
                        alert.stream,
                        alert.event_id,
                        payload,
                        now,
                    )
                )
            if cursor is not None:
                self.db.set_state(conn, "cursor", str(cursor))
        return stored

    # -- deliveries ----------------------------------------------------------------------------
    def due(self, channel: str, now: float, limit: int = 32) -> list[Delivery]:
        rows = self.db.rows(
            f"SELECT d.id, d.channel, d.target, d.attempts, {_ALERT} FROM deliveries d "
            "JOIN alerts a ON a.id = d.alert_id WHERE d.status = ? AND d.channel = ? "
            "AND d.next_at <= ? ORDER BY d.next_at, d.id LIMIT ?",
            (PENDING, channel, now, limit),
        )
        return [Delivery(r[0], r[1], json.loads(r[2]), r[3], _alert(r[4:])) for r in rows]

    def next_due(self, channel: str) -> float | None:
        row = self.db.one(
            "SELECT MIN(next_at) FROM deliveries WHERE status = ? AND channel = ?",
            (PENDING, channel),
        )
        return None if row[0] is None else float(row[0])

    def delivered(self, delivery_id: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, delivered_at = ?, "
                "last_error = NULL WHERE id = ?",
                (DELIVERED, time.time(), delivery_id),
            )

    def retry(self, delivery_id: int, next_at: float, error: str, *, give_up: bool) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_at = ?, "
                "last_error = ? WHERE id = ?",
                (FAILED if give_up else PENDING, next_at, error[:500], delivery_id),
            )

    def pending(self, channel: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM deliveries WHERE status = ?"
        args: tuple[Any, ...] = (PENDING,)
        if channel is not None:
            sql += " AND channel = ?"
            args += (channel,)
        return int(self.db.one(sql, args)[0])

    # -- the alert log -------------------------------------------------------------------------
    def alerts(
        self,
        owner: str,
        *,
        after_id: int = 0,
        stream: str | None = None,
        watch_id: str | None = None,
        limit: int = 100,
    ) -> list[AlertRecord]:
        """An owner's alerts after ``after_id``, oldest first (SSE replay, ``GET /v1/alerts``)."""
        where, args = ["a.owner = ?", "a.id > ?"], [owner, after_id]
        if stream is not None:
            where.append("a.stream = ?")
            args.append(stream)
        if watch_id is not None:
            where.append("a.watch_id = ?")
            args.append(watch_id)
        rows = self.db.rows(
            f"SELECT {_ALERT} FROM alerts a WHERE {' AND '.join(where)} ORDER BY a.id LIMIT ?",
            (*args, limit),
        )
        return [_alert(r) for r in rows]

    def since(self, after_id: int, limit: int = 500) -> list[AlertRecord]:
        """Every owner's alerts after ``after_id``, oldest first (a replica's live fan-out)."""
        rows = self.db.rows(
            f"SELECT {_ALERT} FROM alerts a WHERE a.id > ? ORDER BY a.id LIMIT ?",
            (after_id, limit),
        )
        return [_alert(r) for r in rows]

    def max_id(self) -> int:
        return int(self.db.one("SELECT MAX(id) FROM alerts")[0] or 0)

    def latest_id(self, owner: str) -> int:
        row = self.db.one("SELECT MAX(id) FROM alerts WHERE owner = ?", (owner,))
        return int(row[0] or 0)

    def recent_fires(self, since: float) -> list[tuple[str, str, float, float, float]]:
        """(watch_id, stream, event start, event end, created) of alerts since ``since`` — the
        cooldown and rate-limit history a restarted engine starts from."""
        rows = self.db.rows(
            "SELECT watch_id, stream, payload, created FROM alerts WHERE created >= ? ORDER BY id",
            (since,),
        )
        result = []
        for watch_id, stream, payload, created in rows:
            event = json.loads(payload).get("event", {})
            result.append(
                (
                    watch_id,
                    stream,
                    float(event.get("start", 0)),
                    float(event.get("end", 0)),
                    created,
                )
            )
        return result

    def delivery_status(self, alert_id: int) -> list[dict[str, Any]]:
        rows = self.db.rows(
            "SELECT channel, status, attempts, last_error, delivered_at FROM deliveries "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
        return [
            {"channel": c, "status": s, "attempts": n, "last_error": e, "delivered_at": t}
            for c, s, n, e, t in rows
        ]
