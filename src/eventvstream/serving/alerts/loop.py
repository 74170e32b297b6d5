"""A background loop that runs one step when woken, or by itself after a delay the step chooses.

Why one loop: the alert follower and every outbox sender (webhooks, MQTT) are the same thread
shape: "do what is due, sleep until the next thing is due or someone calls :meth:`wake`, stop
cleanly on :meth:`stop`". A wake-up that arrives *while* the step runs is counted and makes the
loop go round again at once, so it is never lost to the gap between the step and the wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class WakeLoop:
    """A daemon thread calling ``step()`` (it returns the seconds to sleep before the next call
    unless woken). A step that raises is logged and tried again after ``error_wait_s``."""

    def __init__(self, name: str, step: Callable[[], float], *, error_wait_s: float = 1.0) -> None:
        self.name = name
        self._step = step
        self._error_wait_s = error_wait_s
        self._cond = threading.Condition()
        self._wakeups = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> WakeLoop:
        self._thread.start()
        return self

    @property
    def stopping(self) -> bool:
        with self._cond:
            return self._stopping

    def wake(self) -> None:
        with self._cond:
            self._wakeups += 1
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                seen = self._wakeups
            try:
                wait = self._step()
            except Exception:
                log.exception("%s: step failed; retrying", self.name)
                wait = self._error_wait_s
            with self._cond:
                if not self._stopping and self._wakeups == seen:
                    self._cond.wait(timeout=max(0.0, wait))

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the loop to end after its current step; wait for it (bounded)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
