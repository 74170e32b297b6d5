"""Per-key quotas inside the global limits, so that no API key can starve another.

Live sessions are counted where they live (the session registry, ``max_sessions_per_key``);
this module counts what only the API sees: uploads being received, queued or running (how many,
and their bytes) and questions being answered. A key over its share — or a server over the
whole — gets 429 with ``Retry-After``, like a rate limit: ``quota_exceeded`` for a key's share,
``too_many_uploads`` / ``too_many_questions`` for the server's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventvstream.api.errors import ApiError
from eventvstream.config import ServerSettings

UPLOAD_RETRY_S = 10
QUESTION_RETRY_S = 2
FINISHED = ("done", "failed")


def _refuse(message: str, code: str, retry_s: int) -> ApiError:
    return ApiError(message, code=code, headers={"Retry-After": str(retry_s)})


@dataclass
class UploadTicket:
    """One upload's claim on its key's share, from the first byte until its job ends."""

    owner: str
    room: int  # bytes it may still spool (per-key and global byte budgets, and the size limit)
    size: int = 0
    job: Any = None  # the queued job once submitted; its state ends the claim
    released: bool = False

    @property
    def active(self) -> bool:
        if self.released:
            return False
        return self.job is None or getattr(self.job, "state", "done") not in FINISHED


class Quotas:
    def __init__(self, server: ServerSettings) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._uploads: list[UploadTicket] = []
        self._questions: dict[str, int] = {}

    # -- uploads ---------------------------------------------------------------------------
    def start_upload(self, owner: str, declared: int | None) -> UploadTicket:
        """Claim an upload slot for ``owner`` before its body is read (429 when none is free).
        ``declared``: its Content-Length, if any, checked against the byte budgets at once."""
        s = self.server
        with self._lock:
            self._uploads = [t for t in self._uploads if t.active]
            mine = [t for t in self._uploads if t.owner == owner]
            if len(self._uploads) >= s.max_uploads:
                raise _refuse(
                    f"the server has {s.max_uploads} uploads in progress; retry later",
                    "too_many_uploads",
                    UPLOAD_RETRY_S,
                )
            if len(mine) >= s.max_uploads_per_key:
                raise _refuse(
                    f"this key has {len(mine)} uploads in progress (server.max_uploads_per_key);"
                    " wait for one to finish",
                    "quota_exceeded",
                    UPLOAD_RETRY_S,
                )
            room = min(
                s.max_upload_bytes,
                s.max_upload_queue_bytes - sum(t.size for t in self._uploads),
                s.max_upload_queue_bytes_per_key - sum(t.size for t in mine),
            )
            if declared is not None and declared > room and declared <= s.max_upload_bytes:
                raise self.bytes_refusal()
            ticket = UploadTicket(owner, room)
            self._uploads.append(ticket)
            return ticket

    def grew(self, ticket: UploadTicket, size: int) -> None:
        """The spooled size so far (counted against the byte budgets of everyone after it)."""
        with self._lock:
            ticket.size = size

    def bytes_refusal(self) -> ApiError:
        return _refuse(
            "uploads waiting for ingest already hold this key's (or the server's) byte budget "
            "(server.max_upload_queue_bytes_per_key / max_upload_queue_bytes); retry later",
            "quota_exceeded",
            UPLOAD_RETRY_S,
        )

    @staticmethod
    def release(ticket: UploadTicket) -> None:
        ticket.released = True

    def uploads_in_progress(self, owner: str | None = None) -> int:
        with self._lock:
            return sum(t.active and (owner is None or t.owner == owner) for t in self._uploads)

    # -- questions -------------------------------------------------------------------------
    def start_question(self, owner: str) -> Callable[[], None]:
        """Claim a question slot; returns the (idempotent) release. 429 when none is free."""
        s = self.server
        with self._lock:
            total = sum(self._questions.values())
            mine = self._questions.get(owner, 0)
            if total >= s.max_questions:
                raise _refuse(
                    f"the server is answering {total} questions; retry shortly",
                    "too_many_questions",
                    QUESTION_RETRY_S,
                )
            if mine >= s.max_questions_per_key:
                raise _refuse(
                    f"this key has {mine} questions in flight (server.max_questions_per_key)",
                    "quota_exceeded",
                    QUESTION_RETRY_S,
                )
            self._questions[owner] = mine + 1
        done = False

        def release() -> None:
            nonlocal done
            with self._lock:
                if done:
                    return
                done = True
                left = self._questions.get(owner, 1) - 1
                if left > 0:
                    self._questions[owner] = left
                else:
                    self._questions.pop(owner, None)

        return release
