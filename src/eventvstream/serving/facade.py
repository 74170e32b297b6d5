"""What the API may ask of the engine: the one typed seam between ``api/`` and ``serving/``.

``api/`` holds an :class:`EngineFacade` and calls nothing else of the engine (never its live
ingest, stream registry, job runner or models), so the serving internals can change without
touching a route, and a test can stand in a fake engine. :class:`~eventvstream.serving.engine.
Engine` implements it. Methods marked *blocking* touch the memory bank or wait on a thread: call
them with ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from eventvstream.language.qa import Answer
from eventvstream.memory.retrieval import Scope
from eventvstream.pipeline.ingest import IngestListener
from eventvstream.serving.alerts.engine import AlertEngine
from eventvstream.serving.jobs import UploadJob
from eventvstream.serving.notices import SessionStatus
from eventvstream.serving.pull import PullSpec
from eventvstream.serving.session import LiveSession, SessionConfig


class EngineFacade(Protocol):
    ready: bool  # models warm (and not closed)
    draining: bool  # shutting down: no new work
    error: str | None  # a fatal load error, for /readyz
    alerts: AlertEngine | None  # watches, the alert log and its live hub (None: alerts off)

    # lifetime
    def start(self) -> None: ...
    def check_accepting(self) -> None: ...  # raises EvsError not_ready / draining
    def check_ready(self) -> None: ...  # raises EvsError not_ready
    def begin_drain(self) -> None: ...
    def wait_idle(self, deadline: float) -> bool: ...  # blocking
    def close(self) -> None: ...  # blocking
    def add_listener(self, listener: IngestListener) -> None: ...

    # live sessions
    def open_session(self, owner: str, stream: str, *, websocket: bool) -> LiveSession: ...
    def configure_session(self, session: LiveSession, config: SessionConfig) -> None: ...
    def close_session(self, session: LiveSession) -> None: ...
    def end_input(self, session: LiveSession, query_id: str | None) -> None: ...
    async def ingest_frame(
        self,
        session: LiveSession,
        t_client: float,
        data: bytes,
        received_at: float,
        *,
        decode_now: bool = False,
    ) -> tuple[bool, int]: ...
    def session_status(self, session: LiveSession) -> SessionStatus: ...
    def is_live(self, owner: str, stream: str) -> bool: ...

    # pull sources (blocking)
    def start_pull(self, owner: str, stream: str, spec: PullSpec) -> dict[str, Any] | None: ...
    def pull_status(self, owner: str, stream: str) -> dict[str, Any] | None: ...
    def stop_pull(self, owner: str, stream: str) -> bool: ...
    def pulls_by_state(self) -> dict[str, int]: ...

    # streams (blocking)
    def ensure_stream(self, owner: str, stream: str) -> bool: ...
    def stream_exists(self, owner: str, stream: str) -> bool: ...
    def describe_streams(self, owner: str, stream: str | None = None) -> list[dict[str, Any]]: ...
    def delete_stream(self, owner: str, stream: str) -> int: ...

    # uploads
    def submit_upload(self, job: UploadJob) -> UploadJob: ...  # blocking
    def get_job(self, owner: str, job_id: str) -> dict[str, Any] | None: ...  # blocking

    # memory
    def answer(self, question: str, scope: Scope) -> AsyncIterator[str | Answer]: ...
    def find_events(
        self,
        owner: str,
        stream: str,
        *,
        t0: float | None = None,
        t1: float | None = None,
        q: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...  # blocking

    # metrics
    @property
    def session_count(self) -> int: ...
    def queue_depths(self) -> dict[str, int]: ...
    def lag(self) -> tuple[float, float]: ...
    def metrics_snapshot(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]: ...
    @property
    def load_s(self) -> float: ...
