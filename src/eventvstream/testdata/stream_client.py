"""A WebSocket client of one live stream of a real ``evs serve``, for end-to-end tests and
benchmarks: it sends ``session.config`` and JPEG frames at a chosen pace while a reader thread
keeps every message the server sends (and when each ``event.boundary`` first arrived).

Why a reader thread: the server talks while the client sends (status, boundaries, captions,
alerts), and a test that kills the server "the instant the first boundary arrives" must see
messages as they come, not after it has finished sending. Not product code.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

OnMessage = Callable[[dict[str, Any], "StreamClient"], None]


def binary_frame(t: float, data: bytes) -> bytes:
    """The WebSocket binary frame: 8-byte big-endian float64 time, then the image bytes."""
    return struct.pack(">d", t) + data


class StreamClient:
    """Connects on creation; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        port: int,
        stream: str,
        *,
        key: str | None = None,
        on_message: OnMessage | None = None,
        arrived: dict[int, float] | None = None,
        open_timeout_s: float = 10.0,
    ) -> None:
        """``arrived``: a dict of the caller's to fill (event id -> wall time of its first
        boundary), readable while frames are still being sent."""
        from websockets.sync.client import connect

        self.on_message = on_message
        self.messages: list[dict[str, Any]] = []
        self.arrived: dict[int, float] = {} if arrived is None else arrived
        self._changed = threading.Condition()
        headers = {"Authorization": f"Bearer {key}"} if key else None
        url = f"ws://127.0.0.1:{port}/v1/streams/{stream}/ws"
        self._exit = contextlib.ExitStack()  # websockets wants connect() used as a context
        self.ws = self._exit.enter_context(
            connect(url, additional_headers=headers, open_timeout=open_timeout_s, max_size=None)
        )
        self.reader = threading.Thread(target=self._read, name="evs-test-reader", daemon=True)
        self.reader.start()

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def boundaries(self) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if m["type"] == "event.boundary"]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if m["type"] == kind]

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                if message["type"] == "event.boundary":
                    self.arrived.setdefault(message["event_id"], time.time())
                with self._changed:
                    self.messages.append(message)
                    self._changed.notify_all()
                if self.on_message is not None:
                    self.on_message(message, self)
        except Exception:  # the connection closed, or the server died under it
            pass
        with self._changed:
            self._changed.notify_all()

    def configure(self, **config: Any) -> None:
        self.ws.send(json.dumps({"type": "session.config", **config}))

    def send_frames(
        self,
        jpegs: Sequence[bytes],
        *,
        t0: float = 0.0,
        fps: float = 2.0,
        pause_s: float = 0.1,
        stop: Callable[[int], bool] | None = None,
    ) -> int:
        """Frame ``i`` at stream time ``t0 + i / fps``, ``pause_s`` apart in wall time; stops
        before frame ``i`` when ``stop(i)`` is true. Returns how many were sent."""
        for i, data in enumerate(jpegs):
            if stop is not None and stop(i):
                return i
            self.ws.send(binary_frame(t0 + i / fps, data))
            time.sleep(pause_s)
        return len(jpegs)

    def wait_for(self, done: Callable[[StreamClient], bool], timeout_s: float) -> bool:
        """Wait (bounded) until ``done(self)``, re-checked on every message."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not done(self):
                left = deadline - time.monotonic()
                if left <= 0 or not self.reader.is_alive():
                    return done(self)
                self._changed.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._exit.close()
        self.reader.join(timeout=10)
