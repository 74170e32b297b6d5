"""Event rows and their codecs: Python values <-> the columns of the ``events`` table.

Everything that knows how a field is stored (float32 blobs for vectors, JSON for keyframes,
labels and boundaries, ``t_start``/``t_end`` for the span) lives here, so the queries in
``store.py`` and the writes in ``transaction.py`` never pack or unpack a value themselves.
Rows are built with keywords; the column order lives in one place, ``COLUMN_NAMES``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventvstream.errors import EvsError
from eventvstream.events.types import Event

# The SQL columns of ``events``, in the order ``SELECT {COLUMNS}`` returns them.
COLUMN_NAMES = (
    "id",
    "stream",
    "owner",
    "source",
    "source_index",
    "t_start",
    "t_end",
    "frames",
    "embedding",
    "keyframes",
    "labels",
    "boundaries",
    "caption",
    "text",
    "text_embedding",
    "merge_count",
    "seq",
    "created",
    "updated",
    "wall_start",
)
COLUMNS = ", ".join(COLUMN_NAMES)


@dataclass
class EventRow:
    """One stored event slot (after any merges)."""

    id: int
    stream: str
    owner: str
    source: str | None
    source_index: int | None
    start: float
    end: float
    frames: int
    embedding: np.ndarray
    keyframes: list[dict[str, Any]]
    labels: list[list[Any]]
    boundaries: dict[str, Any]
    caption: str | None
    text: str | None
    text_embedding: np.ndarray | None
    merge_count: int
    seq: int
    created: float
    updated: float
    #: Unix time the event began on a live stream (None for a file's): maps its stream times
    #: to the wall clock ("what happened at 10:30?"); stream times never jump inside an event
    wall_start: float | None = None

    @property
    def wall_end(self) -> float | None:
        return None if self.wall_start is None else self.wall_start + (self.end - self.start)

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        data = {
            "id": self.id,
            "stream": self.stream,
            "owner": self.owner,
            "source": self.source,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "frames": self.frames,
            "keyframes": self.keyframes,
            "labels": self.labels,
            "boundaries": self.boundaries,
            "caption": self.caption,
            "text": self.text,
            "merge_count": self.merge_count,
            **wall_times(self.wall_start, self.start, self.end),
        }
        if with_embedding:
            data["embedding"] = [round(float(x), 6) for x in self.embedding]
        return data


def wall_times(wall_start: float | None, start: float, end: float) -> dict[str, float]:
    """``wall_start``/``wall_end`` (Unix seconds) for a payload, or nothing (a file's event)."""
    if wall_start is None:
        return {}
    return {"wall_start": round(wall_start, 3), "wall_end": round(wall_start + end - start, 3)}


def event_values(event: Event) -> dict[str, Any]:
    """The columns an :class:`~eventvstream.events.Event` fills (captions come later), as the
    value dict ``MemoryBank.add`` takes."""
    labels = [[name, round(p, 4)] for name, p in event.labels[:20]]  # pooled, for roll-ups
    return {
        "start": event.start,
        "end": event.end,
        "frames": event.frame_count,
        "embedding": event.embedding,
        "keyframes": [k.to_dict() for k in event.keyframes],
        "labels": labels,
        "boundaries": {
            "opened_by": event.opened_by.to_dict(),
            "closed_by": event.closed_by.to_dict(),
        },
    }


def new_slot(
    event_id: int,
    values: dict[str, Any],
    stream: str,
    owner: str,
    source: str | None,
    embedding: np.ndarray,
    seq: int,
) -> EventRow:
    """The row a value dict (``event_values``) just became, without reading it back: the
    stream's last slot for the next event of a batch to merge into."""
    return EventRow(
        id=event_id,
        stream=stream,
        owner=owner,
        source=source,
        source_index=None,
        start=values["start"],
        end=values["end"],
        frames=values["frames"],
        embedding=embedding,
        keyframes=values["keyframes"],
        labels=values["labels"],
        boundaries=values["boundaries"],
        caption=None,
        text=None,
        text_embedding=None,
        merge_count=0,
        seq=seq,
        created=0.0,
        updated=0.0,
        wall_start=values.get("wall_start"),
    )


def blob(vector: np.ndarray | None) -> bytes | None:
    """A vector as stored: raw float32 bytes."""
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def vector(data: bytes | None) -> np.ndarray | None:
    """A stored vector back as a (writable) float32 array."""
    return None if data is None else np.frombuffer(data, dtype=np.float32).copy()


def vectors_of(
    rows: Sequence[Sequence[Any]], dim: int, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, an n x ``dim`` float32 matrix) from ``(id, vector blob)`` rows with no NULL blob:
    one join and one ``frombuffer`` for the whole chunk instead of an array per row (a cache
    rebuild reads every row). The matrix is read-only (it views the joined bytes)."""
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    data = b"".join(row[1] for row in rows)
    if len(data) != len(rows) * dim * 4:
        bad = next(row for row in rows if len(row[1]) != dim * 4)
        raise EvsError(
            f"event {bad[0]} has a {len(bad[1]) // 4}-d {column}; this memory's index of it "
            f"is {dim}-d",
            code="dimension_mismatch",
        )
    return ids, np.frombuffer(data, dtype=np.float32).reshape(len(rows), dim)


def decode_row(values: Sequence[Any]) -> EventRow:
    """An :class:`EventRow` from one ``SELECT {COLUMNS}`` result (indexes follow
    ``COLUMN_NAMES``; a dict per row would cost 15% of a read)."""
    return EventRow(
        id=values[0],
        stream=values[1],
        owner=values[2],
        source=values[3],
        source_index=values[4],
        start=values[5],
        end=values[6],
        frames=values[7],
        embedding=vector(values[8]),  # type: ignore[arg-type]  # a NOT NULL column
        keyframes=json.loads(values[9]),
        labels=json.loads(values[10]),
        boundaries=json.loads(values[11]),
        caption=values[12],
        text=values[13],
        text_embedding=vector(values[14]),
        merge_count=values[15],
        seq=values[16],
        created=values[17],
        updated=values[18],
        wall_start=values[19],
    )


def encode_new(values: dict[str, Any], *, seq: int, now: float) -> tuple[Any, ...]:
    """The parameters of ``INSERT_SQL`` (``COLUMN_NAMES`` but ``id``, in order) for a new slot
    from a value dict: ``event_values`` plus ``stream``, and optionally ``owner``, ``source``,
    ``source_index``, ``caption``, ``text``, ``text_embedding``. A plain tuple: an insert is on
    every event's path, and sqlite3 binds named parameters about 50% slower."""
    return (
        values["stream"],
        values.get("owner", ""),
        values.get("source"),
        values.get("source_index"),
        float(values["start"]),  # t_start (exact types: PostgreSQL's binary COPY needs them)
        float(values["end"]),  # t_end
        int(values["frames"]),
        blob(values["embedding"]),
        json.dumps(values.get("keyframes", [])),
        json.dumps(values.get("labels", [])),
        json.dumps(values.get("boundaries", {})),
        values.get("caption"),
        values.get("text"),
        blob(values.get("text_embedding")),
        0,  # merge_count
        seq,
        now,  # created
        now,  # updated
        values.get("wall_start"),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


_INSERTED = COLUMN_NAMES[1:]  # every column but ``id``, which SQLite assigns
INSERT_SQL = "INSERT INTO events ({}) VALUES ({})".format(
    ", ".join(_INSERTED), ", ".join("?" * len(_INSERTED))
)
# The same with the id given: a backend that hands out ids ahead (``Backend.reserve_ids``, one
# round trip for a batch) inserts a batch without waiting for each row's id.
INSERT_WITH_ID_SQL = "INSERT INTO events ({}) VALUES ({})".format(
    ", ".join(COLUMN_NAMES), ", ".join("?" * len(COLUMN_NAMES))
)
