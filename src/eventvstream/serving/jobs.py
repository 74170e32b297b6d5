"""Video uploads ingested as background jobs, one at a time.

Why one at a time: an upload is decoded and encoded as fast as the machine allows, sharing the
image encoder with live sessions; two at once would only split the same cores and delay both.
The job reuses :class:`~eventvstream.pipeline.segmenter.Segmenter` (decoder subprocess, crash
isolation, labels) with the engine's shared encoder wrapped to count frames, which gives the
progress fraction. Its events go through the one ingest step
(:mod:`eventvstream.pipeline.ingest`), like live events. A file already ingested into the
stream (same content hash) is not ingested twice.

A job's status is also written to the memory database (``memory/jobs.py``: when it is queued,
starts, ends, and at most once a second in between), so ``GET /v1/jobs/{id}`` is answered by
any replica on a shared database, and after a restart. A job whose server died before it ended
reads ``failed`` with code ``interrupted`` (its half-ingested events are discarded by the next
upload of the same file).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.config import Settings
from eventvstream.errors import EvsError
from eventvstream.events.types import Boundary, Event
from eventvstream.media import VideoInfo
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.jobs import UNFINISHED, JobStore
from eventvstream.perception.base import ImageEncoder
from eventvstream.pipeline.ingest import Ingest

log = logging.getLogger(__name__)

KEEP_JOBS = 512  # finished jobs kept in memory (all of them are in the database for a week)
SAVE_EVERY_S = 1.0  # progress written to the database at most this often
LOCAL = "local"  # the replica name of a server alone on its database
INTERRUPTED = {
    "code": "interrupted",
    "message": "the server running this upload stopped before it finished; upload the file "
    "again (it resumes cleanly)",
}


class JobCancelled(EvsError):
    code = "cancelled"


@dataclass
class UploadJob:
    owner: str
    stream: str
    path: Path
    digest: str  # sha256 of the uploaded bytes: the source id, so a re-upload is recognised
    filename: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "queued"  # queued | running | done | failed
    progress: float = 0.0
    events: int = 0
    error: dict[str, str] | None = None
    note: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    #: Called after progress or events change (the job list saves it, throttled).
    on_change: Callable[[UploadJob], None] | None = field(default=None, repr=False, compare=False)

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    @property
    def source(self) -> str:
        """The dedupe id of this file in this stream *of this owner*: two keys uploading the
        same bytes to their own streams of the same name are two sources, so neither is told
        the file was "already ingested" nor can discard the other's half-ingested events. (Ids
        without an owner part, as before, are those of the no-key owner "".)"""
        scope = f"{self.owner}/{self.stream}" if self.owner else self.stream
        return f"upload:{scope}:{self.digest[:32]}"

    def public_error(self, error: dict[str, str]) -> dict[str, str]:
        """``error`` with the server's temp path replaced by the client's file name: a job
        error is shown to the client and must not describe the server's disk."""
        name = repr(self.filename) if self.filename else "the uploaded file"
        message = error.get("message", "")
        for secret in (str(self.path), self.path.name, str(self.path.parent)):
            message = message.replace(secret, name)
        return {**error, "message": message}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "job_id": self.id,
            "stream": self.stream,
            "state": self.state,
            "progress": round(self.progress, 4),
            "events": self.events,
            "created": self.created,
            "finished": self.finished,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.note is not None:
            data["note"] = self.note
        return data


class CountingEncoder:
    """The shared encoder, counting the frames one job has encoded (its progress)."""

    def __init__(self, inner: ImageEncoder, on_frames: Callable[[int], None]) -> None:
        self.inner = inner
        self.info = inner.info
        self._on_frames = on_frames

    def encode_images(self, images: Any) -> np.ndarray:
        out = self.inner.encode_images(images)
        self._on_frames(len(images))
        return out

    def encode_and_label(self, images: Any, k: int) -> tuple[np.ndarray, Any]:
        out = self.inner.encode_and_label(images, k)
        self._on_frames(len(images))
        return out

    def top_labels(self, images: Any, k: int) -> Any:
        return self.inner.top_labels(images, k)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_text(texts)


def shift_event(event: Event, offset: float) -> Event:
    """Move an event (its span, keyframes and boundaries) ``offset`` seconds later, so a file
    appended to a stream continues the stream's timeline."""
    if offset == 0:
        return event

    def move(boundary: Boundary) -> Boundary:
        fired = None if boundary.fired_at is None else boundary.fired_at + offset
        return replace(boundary, t=boundary.t + offset, fired_at=fired)

    event.start += offset
    event.end += offset
    for keyframe in event.keyframes:
        keyframe.t += offset
    event.opened_by, event.closed_by = move(event.opened_by), move(event.closed_by)
    return event


Runner = Callable[[UploadJob, threading.Event], int]


class UploadJobs:
    """A queue of upload jobs and the one thread that runs them; their status in memory and in
    the database (``store``), where every replica reads it."""

    def __init__(
        self,
        run: Runner,
        store: JobStore | None = None,
        *,
        replica: str | None = None,
        alive: Callable[[str], bool] | None = None,
    ) -> None:
        self._run = run
        self.store = store
        self.replica = replica or LOCAL
        self._alive = alive  # with replicas: is the replica running a job still live?
        self._queue: queue.Queue[UploadJob | None] = queue.Queue()
        self._jobs: OrderedDict[str, UploadJob] = OrderedDict()
        self._lock = threading.Lock()
        self._saved: dict[str, float] = {}  # job id -> when its progress was last written
        self._cancel = threading.Event()
        if store is not None:
            self._quietly(self._recover)
        self._thread = threading.Thread(target=self._loop, name="evs-uploads", daemon=True)
        self._thread.start()

    def submit(self, job: UploadJob) -> UploadJob:
        job.on_change = self._progress
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].state in ("queued", "running"):
                    break
                del self._jobs[oldest]
        self._save(job)
        self._queue.put(job)
        return job

    def get(self, owner: str, job_id: str) -> UploadJob | None:
        """A job of this process; only the owner sees it (another key gets None, i.e. 404)."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def status(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """The owner's job as ``GET /v1/jobs/{id}`` shows it: this process's own, else the one
        another replica (or this server before a restart) wrote. Blocking."""
        job = self.get(owner, job_id)
        if job is not None:
            return job.to_dict()
        if self.store is None:
            return None
        found = self.store.get(owner, job_id)
        if found is None:
            return None
        runner = found.pop("replica")
        if found["state"] in UNFINISHED and runner != self.replica and not self._is_alive(runner):
            found |= {"state": "failed", "error": dict(INTERRUPTED)}
        return found

    def _is_alive(self, replica: str) -> bool:
        """Whether the replica that wrote a job still runs (alone on the database: never
        another one, so no)."""
        return self._alive is not None and self._alive(replica)

    @property
    def active(self) -> int:
        with self._lock:
            return sum(job.state in ("queued", "running") for job in self._jobs.values())

    def close(self, timeout: float = 5.0) -> None:
        """Cancel the running job (its half-ingested source is discarded on the next upload of
        the same file) and fail the queued ones."""
        self._cancel.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._cancel.is_set():
                self._fail(job, {"code": "cancelled", "message": "the server shut down"})
                continue
            job.state = "running"
            self._save(job)
            try:
                job.events = self._run(job, self._cancel)
                job.progress, job.state = 1.0, "done"
            except EvsError as exc:
                self._fail(job, job.public_error(exc.to_dict()))
            except Exception:  # a bad file must not take the job thread down
                log.exception("upload job %s failed", job.id)
                message = "ingest failed (the details are in the server log)"
                self._fail(job, {"code": "internal_error", "message": message})
            finally:
                job.finished = time.time()
                job.path.unlink(missing_ok=True)
                self._save(job)

    def _fail(self, job: UploadJob, error: dict[str, str]) -> None:
        job.state, job.error, job.finished = "failed", error, time.time()
        job.path.unlink(missing_ok=True)
        self._save(job)

    # -- the database copy -------------------------------------------------------------------
    def _recover(self) -> None:
        """Jobs this server (this replica id) left unfinished when it last stopped: failed.
        Alone on its database, that is every unfinished job."""
        assert self.store is not None
        count = self.store.interrupt(None if self.replica == LOCAL else self.replica, INTERRUPTED)
        if count:
            log.info("%d upload job(s) interrupted by the last stop marked failed", count)
        self.store.prune()

    def _progress(self, job: UploadJob) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._saved.get(job.id, 0.0) < SAVE_EVERY_S:
                return
            self._saved[job.id] = now
        self._save(job)

    def _save(self, job: UploadJob) -> None:
        if self.store is None:
            return
        store = self.store
        if job.finished is not None:
            with self._lock:
                self._saved.pop(job.id, None)
        self._quietly(lambda: store.save(job.owner, self.replica, job.to_dict()))

    @staticmethod
    def _quietly(write: Callable[[], Any]) -> None:
        """A status write that fails (the database is away) never fails the upload itself."""
        try:
            write()
        except Exception as exc:
            log.warning("could not save upload job status: %s", type(exc).__name__)


class UploadRunner:
    """Runs one upload job: the file through a :class:`Segmenter` on the shared encoder, each
    event shifted after the stream's last one (one timeline per stream) and handed to the one
    ingest step."""

    def __init__(
        self, settings: Settings, encoder: ImageEncoder, bank: MemoryBank, ingest: Ingest
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.bank = bank
        self.ingest = ingest

    def __call__(self, job: UploadJob, cancel: threading.Event) -> int:
        """Ingest ``job``'s file into its stream; returns how many events were stored."""
        from eventvstream.pipeline.segmenter import Segmenter

        bank = self.bank
        if not bank.begin_source(job.source, stream=job.stream, owner=job.owner, path=job.filename):
            job.note = "this file was already ingested into this stream"
            return 0
        last = bank.last_of_stream(job.stream, job.owner)
        offset = last.end if last is not None else 0.0
        total = [0]
        done = [0]

        def on_frames(n: int) -> None:
            done[0] += n
            if total[0]:
                job.progress = min(0.99, done[0] / total[0])
                job.changed()

        def on_info(info: VideoInfo) -> None:
            total[0] = max(1, int(info.sampled_frames))

        segmenter = Segmenter(self.settings, encoder=CountingEncoder(self.encoder, on_frames))
        count = 0
        events = segmenter.segment(job.path, keep_images=True, on_info=on_info)
        for index, event in enumerate(events):
            if cancel.is_set():
                raise JobCancelled("the server shut down during the upload")
            self.ingest.store(
                shift_event(event, offset),
                stream=job.stream,
                owner=job.owner,
                source=job.source,
                source_index=index,
            )
            count += 1
            job.events = count
            job.changed()
        bank.finish_source(job.source, count)
        return count
