"""A background thread that keeps one process's FAISS caches following a shared database.

On PostgreSQL other processes commit events this process never saw; every ``interval_s`` the
thread calls ``follow`` (``MemoryBank.follow``: read the committed change sequence, replay what
came after the caches' own), so those events become searchable here within about that long.
A database that cannot be reached is reported once per outage and retried; the thread never
dies of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Follower:
    def __init__(self, follow: Callable[[], int], interval_s: float, where: str) -> None:
        self._follow = follow
        self._interval_s = interval_s
        self._where = where  # for messages: the redacted database location
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evs-memory-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (a replay in progress finishes first)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval_s):
            try:
                self._follow()
                failing = False
            except Exception as exc:  # keep following; say so once per outage
                if not failing:
                    log.warning(
                        "cannot follow the memory database at %s (%s); retrying",
                        self._where,
                        type(exc).__name__,
                    )
                failing = True
