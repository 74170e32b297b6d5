"""The WebSocket notifier: the ingest listener that tells a live session's client what happened.

Events stored from a live session carry its id (``StoredEvent.origin``); this listener finds the
session and queues a typed notice on it (``api/protocol.py`` turns notices into wire messages).
Events from uploads and ``evs run`` have no origin and are not announced on any socket.
"""

from __future__ import annotations

from collections.abc import Callable

from eventvstream.pipeline.ingest import BaseListener, CaptionDone, StoredEvent
from eventvstream.serving.notices import CaptionDelta, SessionError
from eventvstream.serving.session import LiveSession

FindSession = Callable[[str | None], LiveSession | None]


class SessionNotifier(BaseListener):
    def __init__(self, find: FindSession) -> None:
        self._find = find

    def event_stored(self, event: StoredEvent) -> None:
        session = self._find(event.origin)
        if session is not None:
            session.events += 1
            session.emit(event)  # only now: the event is durable, so a client never sees a loss

    def event_merged(self, event: StoredEvent) -> None:
        self.event_stored(event)

    def caption_delta(self, event: StoredEvent, delta: str) -> None:
        session = self._find(event.origin)
        if session is not None:
            session.emit(CaptionDelta(event.id, delta))

    def caption_done(self, caption: CaptionDone) -> None:
        session = self._find(caption.event.origin)
        if session is not None:
            session.emit(caption)

    def caption_failed(self, event: StoredEvent, code: str) -> None:
        session = self._find(event.origin)
        if session is not None:
            message = f"captioning event {event.id} failed; it keeps its label text"
            session.emit(SessionError(code, message))
