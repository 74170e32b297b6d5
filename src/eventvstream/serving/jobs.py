"""Video uploads ingested as background jobs, one at a time.

Why one at a time: an upload is decoded and encoded as fast as the machine allows, sharing the
image encoder with live sessions; two at once would only split the same cores and delay both.
The job reuses :class:`~eventvstream.pipeline.segmenter.Segmenter` (decoder subprocess, crash
isolation, labels) with the engine's shared encoder wrapped to count frames, which gives the
progress fraction. Its events go through the one ingest step
(:mod:`eventvstream.pipeline.ingest`), like live events. A file already ingested into the
stream (same content hash) is not ingested twice.
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
from eventvstream.perception.base import ImageEncoder
from eventvstream.pipeline.ingest import Ingest

log = logging.getLogger(__name__)

KEEP_JOBS = 512  # finished jobs remembered for GET /v1/jobs/{id}


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

    @property
    def source(self) -> str:
        return f"upload:{self.stream}:{self.digest[:32]}"

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
    """A queue of upload jobs and the one thread that runs them."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._queue: queue.Queue[UploadJob | None] = queue.Queue()
        self._jobs: OrderedDict[str, UploadJob] = OrderedDict()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evs-uploads", daemon=True)
        self._thread.start()

    def submit(self, job: UploadJob) -> UploadJob:
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].state in ("queued", "running"):
                    break
                del self._jobs[oldest]
        self._queue.put(job)
        return job

    def get(self, owner: str, job_id: str) -> UploadJob | None:
        """Only the owner sees a job (another key gets None, i.e. 404)."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

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
            try:
                job.events = self._run(job, self._cancel)
                job.progress, job.state = 1.0, "done"
            except EvsError as exc:
                self._fail(job, exc.to_dict())
            except Exception:  # a bad file must not take the job thread down
                log.exception("upload job %s failed", job.id)
                self._fail(job, {"code": "internal_error", "message": "ingesting the file failed"})
            finally:
                job.finished = time.time()
                job.path.unlink(missing_ok=True)

    @staticmethod
    def _fail(job: UploadJob, error: dict[str, str]) -> None:
        job.state, job.error, job.finished = "failed", error, time.time()
        job.path.unlink(missing_ok=True)


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
        bank.finish_source(job.source, count)
        return count
