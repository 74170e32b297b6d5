"""One WebSocket connection's outgoing messages, bounded.

Why bounded: every message the server sends — status ticks, boundaries, captions, answers,
errors — waits here until the socket's single writer sends it. A client that stops reading
stops that writer (the transport's buffer is full), and an unbounded queue would then grow with
everything the session produces or the client provokes. Past ``max_messages`` or ``max_bytes``
the backlog is dropped and the connection closed (1008) instead.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Close:
    code: int
    reason: str = ""


class Outbox:
    """The messages waiting to go out on one connection, serialised as they are queued so
    their size is known. ``put_nowait`` (also what :meth:`LiveSession.emit` calls, on the loop)
    never blocks; past ``max_messages`` or ``max_bytes`` the backlog is dropped and
    ``on_overflow`` runs once: the client is not reading, and the connection is closed."""

    def __init__(
        self,
        max_messages: int,
        max_bytes: int,
        on_overflow: Callable[[], None],
        serialise: Callable[[Any], str] = json.dumps,
    ) -> None:
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self._on_overflow = on_overflow
        self._serialise = serialise
        self._items: deque[str | Close] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self.overflowed = False

    def put_nowait(self, message: Any) -> None:
        if message is None or self.overflowed:
            return
        if isinstance(message, Close):
            self._items.append(message)
        else:
            text = self._serialise(message)
            self._items.append(text)
            self._bytes += len(text)
            if len(self._items) > self.max_messages or self._bytes > self.max_bytes:
                self.overflowed = True
                self._items.clear()
                self._bytes = 0
                self._on_overflow()
                return
        self._ready.set()

    async def get(self) -> str | Close:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, str):
            self._bytes -= len(item)
        return item

    @property
    def backlog(self) -> tuple[int, int]:
        return len(self._items), self._bytes
