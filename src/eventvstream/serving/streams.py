"""Which streams exist, and for whom.

A stream belongs to one owner (the API key id, or "" without auth) and is namespaced by it: two
keys may both have a stream called ``cam1`` and never see each other's. A stream exists once it is
created over REST, connected to over WebSocket, or has events in memory under that owner (for
example stored by ``evs run --owner``). Explicitly created streams are kept in ``streams.json``
next to the memory bank, so an empty stream survives a restart too; everything else about a stream
(its events, their span) is read from the bank, the one source of truth. With replicas on a
shared database (``shared``) a created stream is also recorded in the database, so every replica
knows it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from eventvstream.fsutil import write_atomic
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.leases import LeaseStore

FILE_NAME = "streams.json"


class StreamRegistry:
    def __init__(self, bank: MemoryBank) -> None:
        self.bank = bank
        self.path = bank.dir / FILE_NAME
        self._lock = threading.Lock()
        self._streams: dict[str, dict[str, dict[str, Any]]] = self._read()
        self.shared: LeaseStore | None = None  # set by the engine when replicas share the store

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(o): dict(s) for o, s in data.get("streams", {}).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _write(self) -> None:
        write_atomic(self.path, json.dumps({"version": 1, "streams": self._streams}))

    def ensure(self, owner: str, stream: str) -> bool:
        """Register ``stream`` for ``owner``; True when it did not exist before."""
        existed = self.exists(owner, stream)
        if self.shared is not None:
            self.shared.add_stream(owner, stream)
        with self._lock:
            if stream not in self._streams.get(owner, {}):
                self._streams.setdefault(owner, {})[stream] = {"created": time.time()}
                self._write()
        return not existed

    def exists(self, owner: str, stream: str) -> bool:
        with self._lock:
            if stream in self._streams.get(owner, {}):
                return True
        if self.shared is not None and stream in self.shared.streams(owner):
            return True
        return self.bank.count(stream=stream, owner=owner) > 0

    def describe(self, owner: str, stream: str | None = None) -> list[dict[str, Any]]:
        """Streams of ``owner`` (or just ``stream``), with their event counts and time span."""
        summaries = self.bank.stream_summaries(owner, stream)
        with self._lock:
            created = dict(self._streams.get(owner, {}))
        if self.shared is not None:
            elsewhere = self.shared.streams(owner)
            created = {n: {"created": t} for n, t in elsewhere.items()} | created
        names = set(summaries) | (set(created) if stream is None else set(created) & {stream})
        return [
            {
                "id": name,
                "created": created.get(name, {}).get("created"),
                **summaries.get(name, {"events": 0, "start": None, "end": None}),
            }
            for name in sorted(names)
        ]

    def delete(self, owner: str, stream: str) -> int:
        """Forget the stream and every event stored in it; returns how many were deleted."""
        removed = self.bank.forget_stream(stream, owner)
        if self.shared is not None:
            self.shared.remove_stream(owner, stream)
        with self._lock:
            if self._streams.get(owner, {}).pop(stream, None) is not None:
                self._write()
        return removed
