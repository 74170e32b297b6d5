"""The engine's stream methods: live sessions, pull sources, the stream registry, and the
stream leases that make them safe with several replicas on one database.

Split from ``engine.py`` (which keeps the models, their threads, uploads and questions) so each
file has one job. Mixed into :class:`~eventvstream.serving.engine.Engine`; with a shared memory
database the engine also has a :class:`~eventvstream.serving.replica.Replica`, and every session
that opens here first claims its stream's lease (``stream_busy`` while another replica feeds
it), every pull source is persisted so another replica can resume it, and this class is the
replica loop's :class:`~eventvstream.serving.replica.ReplicaHost`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from eventvstream.errors import EvsError
from eventvstream.memory.leases import PullRow
from eventvstream.memory.retrieval import Scope
from eventvstream.memory.rows import EventRow
from eventvstream.pipeline.segmenter import pool_labels
from eventvstream.serving.notices import SessionStatus
from eventvstream.serving.pull import PullSpec, check_source
from eventvstream.serving.session import LiveSession, SessionConfig

if TYPE_CHECKING:
    from eventvstream.memory.bank import MemoryBank
    from eventvstream.serving.live import LiveIngest
    from eventvstream.serving.pull import PullSessions
    from eventvstream.serving.replica import Replica
    from eventvstream.serving.streams import StreamRegistry

log = logging.getLogger(__name__)

REMOTE_STOP_WAIT_S = 15.0  # how long a delete waits for another replica to stop its pull


class StreamMethods:
    """Live sessions, pull sources and streams (mixed into the engine)."""

    bank: MemoryBank | None
    live: LiveIngest | None
    pulls: PullSessions | None
    streams: StreamRegistry | None
    replica: Replica | None

    if TYPE_CHECKING:  # the engine's

        def check_accepting(self) -> None: ...
        @property
        def captions_pending(self) -> int: ...

    def _parts(self) -> tuple[LiveIngest, StreamRegistry]:
        if self.live is None or self.streams is None:
            raise EvsError("the models are still loading", code="not_ready")
        return self.live, self.streams

    # -- live sessions --------------------------------------------------------------------------
    def open_session(self, owner: str, stream: str, *, websocket: bool) -> LiveSession:
        """The live session of ``(owner, stream)`` (see :meth:`LiveIngest.open_session`), after
        claiming the stream's lease when replicas share the database. Blocking: call it in a
        worker thread."""
        live = self._parts()[0]
        if self.replica is not None:
            self.replica.claim(owner, stream, "websocket" if websocket else "rest")
        return live.open_session(owner, stream, websocket=websocket)

    def configure_session(self, session: LiveSession, config: SessionConfig) -> None:
        """Apply a client's ``session.config``. Blocking (``resume: false`` deletes events)."""
        self._parts()[0].configure(session, config)

    def close_session(self, session: LiveSession) -> None:
        if self.live is not None:
            self.live.close_session(session)

    def end_input(self, session: LiveSession, query_id: str | None) -> None:
        """A client's ``input.end``: close the open event once its queued frames are encoded
        (answered by ``input.ended``)."""
        self._parts()[0].end_input(session, query_id)

    def open_events(self, scope: Scope) -> list[EventRow]:
        """The still-open event of the live session in ``scope`` so far, as an unsaved row
        (id -1) for "what is happening now?": its frames' labels pooled, spanning from the
        stream's last stored event to the newest encoded frame."""
        live = self.live
        session = live.session(scope.owner or "", scope.stream) if live and scope.stream else None
        if session is None or session.last_processed_t is None:
            return []
        frames = session.open_labels()
        if not frames:
            return []
        assert self.bank is not None
        last = self.bank.last_of_stream(session.stream, session.owner)
        start = last.end if last is not None else 0.0
        end = max(start, session.last_processed_t)
        return [
            EventRow(
                -1, session.stream, session.owner, None, None, start, end, len(frames),
                np.zeros(1, np.float32), [], [[n, p] for n, p in pool_labels(frames)], {},
                None, None, None, 0, 0, 0.0, 0.0, session.wall_at(start),
            )
        ]  # fmt: skip

    async def ingest_frame(
        self,
        session: LiveSession,
        t_client: float,
        data: bytes,
        received_at: float,
        *,
        decode_now: bool = False,
    ) -> tuple[bool, int]:
        """One frame from a client: (queued, frames dropped to make room)."""
        return await self._parts()[0].ingest_frame(
            session, t_client, data, received_at, decode_now=decode_now
        )

    def session_status(self, session: LiveSession) -> SessionStatus:
        return session.status(time.monotonic(), self.captions_pending)

    # -- pull sources (blocking) ----------------------------------------------------------------
    def start_pull(self, owner: str, stream: str, spec: PullSpec) -> dict[str, Any] | None:
        """Pull ``spec.url`` into the stream's live session; the source's status. With replicas
        the spec is persisted first, and a replica already running its fair share leaves the
        source to a less loaded one (None: it starts there within a heartbeat)."""
        self.check_accepting()
        self._parts()
        assert self.pulls is not None
        replica = self.replica
        if replica is None:  # the session registers the stream: a refused pull leaves none
            return self.pulls.start(owner, stream, spec)
        check_source(spec)
        self.ensure_stream(owner, stream)
        holder = replica.holder(owner, stream)
        if holder is not None and holder != replica.id:
            raise EvsError(f"stream {stream!r} is live on replica {holder}", code="stream_busy")
        if self.pulls.status(owner, stream) is not None:
            raise EvsError(f"stream {stream!r} is already pulling a source", code="stream_busy")
        row = PullRow(owner, stream, spec.url, spec.fps, spec.transport)
        mine = sum(1 for kind in self.active_streams().values() if kind == "pull")
        crowded = len(replica.leases.live_replicas()) > 1 and mine >= replica.fair_share(1)
        if crowded:  # persisted without a lease: a less loaded replica claims it
            replica.leases.save_pull(row)
            log.info("stream %s: pull source left to a less loaded replica", stream)
            return None
        replica.claim(owner, stream, "pull")  # before the spec: no other replica claims it
        replica.leases.save_pull(row)
        return self.pulls.start(owner, stream, spec)

    def pull_status(self, owner: str, stream: str) -> dict[str, Any] | None:
        """The stream's pull source (state, last error, counters; URL redacted) or None."""
        return self.pulls.status(owner, stream) if self.pulls is not None else None

    def stop_pull(self, owner: str, stream: str) -> bool:
        """Stop the stream's pull source for good (also on another replica: its spec goes)."""
        forgotten = False
        if self.replica is not None:
            forgotten = self.replica.leases.delete_pull(owner, stream)
        stopped = self.pulls.stop(owner, stream) if self.pulls is not None else False
        return stopped or forgotten

    def pulls_by_state(self) -> dict[str, int]:
        return self.pulls.by_state() if self.pulls is not None else {}

    def is_live(self, owner: str, stream: str) -> bool:
        session = self.live.session(owner, stream) if self.live is not None else None
        if session is not None and not session.closing:
            return True
        return self.replica is not None and self.replica.holder(owner, stream) is not None

    # -- the replica loop's host ---------------------------------------------------------------
    def active_streams(self) -> dict[tuple[str, str], str]:
        """Streams live here: ``pull`` for a running pull source, ``live`` otherwise."""
        sessions = self.live.sessions() if self.live is not None else []
        return {
            (s.owner, s.stream): "pull" if self.pull_status(s.owner, s.stream) else "live"
            for s in sessions
        }

    def resume_pull(self, row: PullRow) -> None:
        """Resume a persisted pull source here (another replica died or let it go)."""
        assert self.pulls is not None
        self.ensure_stream(row.owner, row.stream)
        self.pulls.start(row.owner, row.stream, PullSpec(row.url, row.fps, row.transport))

    def drop_stream(self, owner: str, stream: str) -> None:
        """Stop feeding the stream here; its open event is flushed and stored."""
        if self.pulls is not None and self.pulls.stop(owner, stream):
            return
        session = self.live.session(owner, stream) if self.live is not None else None
        if session is not None and self.live is not None:
            self.live.close_session(session)

    # -- streams (blocking: bank reads) ---------------------------------------------------------
    def ensure_stream(self, owner: str, stream: str) -> bool:
        """Register the stream; True when it is new."""
        return self._parts()[1].ensure(owner, stream)

    def stream_exists(self, owner: str, stream: str) -> bool:
        return self._parts()[1].exists(owner, stream)

    def describe_streams(self, owner: str, stream: str | None = None) -> list[dict[str, Any]]:
        """The owner's streams (or just ``stream``) with events, span and whether live."""
        found = self._parts()[1].describe(owner, stream)
        leases: dict[str, str] = {}
        if self.replica is not None:
            leases = {s: r for o, s, r, _ in self.replica.leases.leases() if o == owner}
        return [info | self._liveness(owner, info["id"], leases) for info in found]

    def _liveness(self, owner: str, stream: str, leases: dict[str, str]) -> dict[str, Any]:
        session = self.live.session(owner, stream) if self.live is not None else None
        here = session is not None and not session.closing
        return {
            "live": here or stream in leases,
            "source": self.pull_status(owner, stream),
            "replica": leases.get(stream),
        }

    def delete_stream(self, owner: str, stream: str) -> int:
        """Forget the stream and its events, after stopping its pull source if it has one;
        refuses (``stream_busy``) while a client feeds it."""
        if self.stop_pull(owner, stream):
            self._wait_closed(owner, stream)
        if self.is_live(owner, stream):
            raise EvsError("the stream is live; disconnect it first", code="stream_busy")
        return self._parts()[1].delete(owner, stream)

    def _wait_closed(self, owner: str, stream: str, timeout: float = 30.0) -> None:
        """Until the stopped session's last event is stored (the encoder thread flushes it),
        here or on the replica that pulled it."""
        session = self.live.session(owner, stream) if self.live is not None else None
        if session is not None:
            session.flushed.wait(timeout)
        deadline = time.monotonic() + REMOTE_STOP_WAIT_S
        while self.replica is not None and time.monotonic() < deadline:
            holder = self.replica.holder(owner, stream)
            if holder is None or holder == self.replica.id:
                break
            time.sleep(0.2)
