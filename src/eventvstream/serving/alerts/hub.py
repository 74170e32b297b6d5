"""Fan-out of alerts and lifecycle messages to live listeners (server-sent events, WebSockets).

The alert engine runs in its own thread; listeners live on the asyncio loop. ``publish`` may be
called from any thread and hands each message to the subscriber's loop with
``call_soon_threadsafe``. A subscriber's queue is bounded: a client that stops reading loses the
oldest messages (and is told how many), never the server's memory. Nothing is lost for good: SSE
clients reconnect with ``Last-Event-ID`` and the alert log replays what they missed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 256


@dataclass(eq=False)
class Subscriber:
    owner: str
    stream: str | None
    events: bool  # also lifecycle messages, not only alerts
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0

    def wants(self, owner: str, stream: str, kind: str) -> bool:
        return (
            owner == self.owner
            and (self.stream is None or self.stream == stream)
            and (kind == "alert" or self.events)
        )

    def _put(self, message: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)


class AlertHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        #: extra sinks, e.g. the live session's WebSocket: (owner, stream, message) -> None
        self.sinks: list[Callable[[str, str, dict[str, Any]], None]] = []

    def subscribe(self, owner: str, stream: str | None, events: bool) -> Subscriber:
        subscriber = Subscriber(owner, stream, events, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, owner: str, stream: str, kind: str, message: dict[str, Any]) -> None:
        """Any thread. ``kind``: ``alert`` or ``event``."""
        with self._lock:
            targets = [s for s in self._subscribers if s.wants(owner, stream, kind)]
        for subscriber in targets:
            try:
                subscriber.loop.call_soon_threadsafe(subscriber._put, message)
            except RuntimeError:  # its loop is closed: the client is gone
                self.unsubscribe(subscriber)
        if kind == "alert":
            for sink in self.sinks:
                sink(owner, stream, message)
