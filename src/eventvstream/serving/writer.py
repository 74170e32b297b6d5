"""The writer thread of live ingest: closed events into the bank, in order, off the encoder.

Why a thread of its own: storing an event is a durable commit (an fsync on SQLite, a round trip
on PostgreSQL); the encoder thread hands events over and goes on encoding. One queue keeps each
session's order: its events, then an ``input.ended`` notice after the events it closed, then
the mark that the session is flushed (a reconnect to the stream waits for it, so its timeline
starts after the last stored event). Each event is stored with the Unix time it began, from its
session's wall-clock anchor (``LiveSession.wall_at``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from eventvstream.events.types import Event
from eventvstream.pipeline.ingest import Ingest
from eventvstream.serving.notices import InputEnded, SessionError
from eventvstream.serving.session import LiveSession

log = logging.getLogger(__name__)

# (session, event) to store, (session, InputEnded) to tell, (session, None): flushed; None stops
_Item = tuple[LiveSession, Event | InputEnded | None] | None


class EventWriter:
    def __init__(self, ingest: Ingest, on_flushed: Callable[[LiveSession], None]) -> None:
        self.ingest = ingest
        self._on_flushed = on_flushed
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="evs-writer", daemon=True)
        self._thread.start()

    def store(self, session: LiveSession, event: Event) -> None:
        self._queue.put((session, event))

    def tell(self, session: LiveSession, notice: InputEnded) -> None:
        """Send ``notice`` once every event queued before it is stored."""
        self._queue.put((session, notice))

    def flushed(self, session: LiveSession) -> None:
        """Mark ``session`` flushed once its queued events are stored."""
        self._queue.put((session, None))

    @property
    def pending(self) -> int:
        """Items queued or being handled."""
        return self._queue.unfinished_tasks

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                session, event = item
                if isinstance(event, InputEnded):
                    session.emit(event)
                elif event is None:
                    self._on_flushed(session)
                    session.flushed.set()
                else:
                    self._store(session, event)
            finally:
                self._queue.task_done()

    def _store(self, session: LiveSession, event: Event) -> None:
        try:
            self.ingest.store(
                event,
                stream=session.stream,
                owner=session.owner,
                source=session.source,
                caption=session.config.generate,
                origin=session.id,
                wall_start=session.wall_at(event.start),
            )
        except Exception:
            log.exception("storing an event of stream %s failed", session.stream)
            session.emit(SessionError("internal_error", "storing an event failed"))
