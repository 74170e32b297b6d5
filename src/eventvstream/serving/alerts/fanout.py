"""A replica's live alert channels, fed from the shared database instead of its own engine.

With replicas on one database, alerts are raised by whichever replica holds the alert role, but
the clients listening live (``/v1/alerts/stream``, a stream's WebSocket ``alert`` messages) are
connected to every replica. So each replica follows, on its own:

* the alert log by id (:meth:`Outbox.since`), from the newest alert when it started: every new
  alert goes to this replica's hub (its SSE subscribers and live sessions). Ids are handed out
  in commit order (one fenced writer at a time, ``memory/outbox.py``), so following by id
  misses none; an SSE client that reconnects replays what it missed from the log by
  ``Last-Event-ID``, as on a single server;
* the change sequence, for event lifecycle messages (``events=true`` subscribers), only while
  this replica has subscribers at all.

MQTT lifecycle messages and every outbox delivery stay with the role holder (one publisher, one
sender per delivery).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventvstream.memory.alertdb import AlertDatabase
from eventvstream.memory.outbox import Outbox
from eventvstream.memory.rows import EventRow
from eventvstream.serving.alerts.hub import AlertHub
from eventvstream.serving.alerts.messages import Lifecycle

BATCH = 500


class Fanout:
    def __init__(
        self,
        db: AlertDatabase,
        outbox: Outbox,
        hub: AlertHub,
        store: Any,
        keyframe_url: Callable[[EventRow], str | None],
    ) -> None:
        self.db, self.outbox, self.hub, self.store = db, outbox, hub, store
        self.keyframe_url = keyframe_url
        self.lifecycle = Lifecycle()
        self.after_id = outbox.max_id()  # live from now on; older alerts are in the log
        self.seq = int(store.current_seq())
        self.published = 0

    def step(self) -> bool:
        """Publish what is new; True when there may be more."""
        more = False
        found = self.outbox.since(self.after_id, BATCH)
        for record in found:
            self.after_id = record.id
            self.published += 1
            self.hub.publish(record.owner, record.stream, "alert", record.message())
        more = len(found) == BATCH
        head = int(self.store.current_seq())
        if head <= self.seq:
            return more
        if not self.hub.count:  # nobody listening here: skip the rows
            self.seq = head
            return more
        ids, self.seq = self.db.changed(self.seq, head, BATCH)
        rows = self.store.get_many(ids)
        for event_id in ids:
            row = rows.get(event_id)
            if row is None:
                continue
            for message in self.lifecycle.changes(row, self.keyframe_url(row)):
                body = message | {"type": "event." + message["type"]}
                self.hub.publish(row.owner, row.stream, "event", body)
        return more or self.seq < head
