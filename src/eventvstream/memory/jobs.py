"""Upload job status, stored: so ``GET /v1/jobs/{id}`` is answered by any replica, and after a
restart.

Why in the memory database: with several replicas behind a load balancer, the upload runs on
the replica that received it, but the client's next poll may land on any other one. The job's
status (state, progress, events, error) is small and changes a few times a second at most, so
the running replica writes it to ``upload_jobs`` (throttled, ``serving/jobs.py``) and every
replica reads it from there. Ownership is a column: a job is read only with its owner, so another
key's job answers exactly like a missing one.

A job is written by the replica that runs it (``replica``). One whose replica died before it
finished stays ``queued`` / ``running`` in the table; readers report it as interrupted
(``serving/jobs.py``), and a replica that restarts under the same id marks its own leftovers.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventvstream.memory.backends import Backend

#: Part of migration 8 (schema.MIGRATIONS).
JOBS_DDL = """
    CREATE TABLE upload_jobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        stream TEXT NOT NULL,
        replica TEXT NOT NULL,
        state TEXT NOT NULL,
        progress REAL NOT NULL,
        events INTEGER NOT NULL,
        error TEXT,
        note TEXT,
        created REAL NOT NULL,
        finished REAL,
        updated REAL NOT NULL
    );
    CREATE INDEX upload_jobs_finished ON upload_jobs(finished);
"""

UNFINISHED = ("queued", "running")
RETENTION_S = 7 * 86400.0  # finished jobs are kept this long
_COLUMNS = "id, stream, state, progress, events, error, note, created, finished, replica"


class JobStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def save(self, owner: str, replica: str, status: dict[str, Any]) -> None:
        """Insert or update a job from its public status (``UploadJob.to_dict()``)."""
        error = status.get("error")
        with self.backend.writer() as conn:
            conn.execute(
                "INSERT INTO upload_jobs (id, owner, stream, replica, state, progress, events, "
                "error, note, created, finished, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
                "progress = excluded.progress, events = excluded.events, error = excluded.error, "
                "note = excluded.note, finished = excluded.finished, updated = excluded.updated",
                (
                    status["job_id"],
                    owner,
                    status["stream"],
                    replica,
                    status["state"],
                    float(status["progress"]),
                    int(status["events"]),
                    None if error is None else json.dumps(error),
                    status.get("note"),
                    float(status["created"]),
                    status.get("finished"),
                    time.time(),
                ),
            )

    def get(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """The owner's job as ``UploadJob.to_dict()`` shows it, plus ``replica`` (who runs it);
        None for a missing job and for another owner's."""
        with self.backend.reader() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM upload_jobs WHERE id = ? AND owner = ?", (job_id, owner)
            ).fetchone()
        if row is None:
            return None
        status: dict[str, Any] = {
            "job_id": row[0],
            "stream": row[1],
            "state": row[2],
            "progress": round(float(row[3]), 4),
            "events": int(row[4]),
            "created": float(row[7]),
            "finished": None if row[8] is None else float(row[8]),
            "replica": row[9],
        }
        if row[5] is not None:
            status["error"] = json.loads(row[5])
        if row[6] is not None:
            status["note"] = row[6]
        return status

    def interrupt(self, replica: str | None, error: dict[str, str]) -> int:
        """Mark unfinished jobs failed with ``error``: those of ``replica`` (None: every one,
        for a database only one process uses). Returns how many."""
        now = time.time()
        sql = (
            "UPDATE upload_jobs SET state = 'failed', error = ?, finished = ?, updated = ? "
            "WHERE state IN (?, ?)"
        )
        args: tuple[Any, ...] = (json.dumps(error), now, now, *UNFINISHED)
        if replica is not None:
            sql += " AND replica = ?"
            args += (replica,)
        with self.backend.writer() as conn:
            return int(conn.execute(sql, args).rowcount or 0)

    def prune(self, older_than_s: float = RETENTION_S) -> int:
        """Forget jobs finished more than ``older_than_s`` ago."""
        with self.backend.writer() as conn:
            cur = conn.execute(
                "DELETE FROM upload_jobs WHERE finished IS NOT NULL AND finished < ?",
                (time.time() - older_than_s,),
            )
            return int(cur.rowcount or 0)
