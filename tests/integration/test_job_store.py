"""Upload job status in the memory database (memory/jobs.py, serving/jobs.py), on SQLite and on
PostgreSQL: a job run by one job list (replica) is read through another, only with its owner's
key; a job whose runner died reads ``failed`` / ``interrupted``; a restart marks its leftovers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventvstream.memory.backends import open_backend
from eventvstream.memory.jobs import JobStore
from eventvstream.memory.schema import check_and_migrate
from eventvstream.serving.jobs import UploadJob, UploadJobs


@pytest.fixture
def store(memory_settings, tmp_path: Path):
    backend = open_backend(memory_settings(tmp_path), tmp_path)
    check_and_migrate(backend)
    yield JobStore(backend)
    backend.close()


def blocking_runner(release: threading.Event) -> Callable[[UploadJob, threading.Event], int]:
    """A job that reports half its progress, then waits for ``release`` and stores 3 events."""

    def run(job: UploadJob, cancel: threading.Event) -> int:
        job.progress = 0.5
        job.changed()
        release.wait(20)
        job.events = 3
        return 3

    return run


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("not in time")


def seen_with(jobs: UploadJobs, job_id: str, **want: Any) -> dict[str, Any] | None:
    """The job as ``jobs`` reads it for owner k1, once it has the wanted values."""
    status = jobs.status("k1", job_id)
    return status if status and all(status.get(k) == v for k, v in want.items()) else None


def test_a_job_is_read_through_another_replica_by_its_owner_only(store, tmp_path) -> None:
    release = threading.Event()
    alive = {"a", "b"}
    a = UploadJobs(blocking_runner(release), store, replica="a", alive=alive.__contains__)
    b = UploadJobs(lambda job, cancel: 0, store, replica="b", alive=alive.__contains__)
    try:
        job = a.submit(UploadJob("k1", "cam", tmp_path / "upload.mp4", "ab" * 32))
        running = until(lambda: seen_with(b, job.id, progress=0.5))
        assert running["state"] == "running" and running["stream"] == "cam"
        assert b.status("k2", job.id) is None and a.status("k2", job.id) is None  # not k2's
        assert b.status("k1", "no-such-job") is None
        release.set()
        done = until(lambda: seen_with(b, job.id, state="done"))
        assert done == a.status("k1", job.id)  # the same answer as the running replica's
        assert done["events"] == 3 and done["progress"] == 1.0 and done["finished"]
    finally:
        release.set()
        a.close()
        b.close()


def test_a_dead_runners_job_reads_interrupted_and_a_restart_marks_it(store, tmp_path) -> None:
    release = threading.Event()
    alive = {"a", "b"}
    a = UploadJobs(blocking_runner(release), store, replica="a", alive=alive.__contains__)
    b = UploadJobs(lambda job, cancel: 0, store, replica="b", alive=alive.__contains__)
    try:
        job = a.submit(UploadJob("k1", "cam", tmp_path / "upload.mp4", "cd" * 32))
        until(lambda: seen_with(b, job.id, state="running"))
        alive.discard("a")  # a's process is gone (its liveness lock with it)
        seen = b.status("k1", job.id)
        assert seen is not None and seen["state"] == "failed"
        assert seen["error"]["code"] == "interrupted"
        assert store.get("k1", job.id)["state"] == "running"  # only the reading says so
        # a comes back under the same name: its unfinished jobs are marked failed for good
        again = UploadJobs(lambda job, cancel: 0, store, replica="a")
        again.close()
        stored = store.get("k1", job.id)
        assert stored["state"] == "failed" and stored["error"]["code"] == "interrupted"
    finally:
        release.set()
        a.close()
        b.close()


def test_alone_on_the_database_a_restart_marks_every_leftover(store, tmp_path) -> None:
    store.save("k1", "local", {"job_id": "j1", "stream": "cam", "state": "queued",
                               "progress": 0.0, "events": 0, "created": time.time()})  # fmt: skip
    jobs = UploadJobs(lambda job, cancel: 0, store)  # no replica name: a single server
    try:
        status = jobs.status("k1", "j1")
        assert status is not None and status["state"] == "failed"
        assert status["error"]["code"] == "interrupted" and status["finished"]
    finally:
        jobs.close()
