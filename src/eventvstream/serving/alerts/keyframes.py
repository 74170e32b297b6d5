"""Keyframes and brightness of watched events, kept while the pixels still exist.

The memory bank keeps no pixels (keyframe images are dropped once the event is described), but an
alert should link to a picture, and "it gets dark" needs the scene's brightness. So when an event
of an owner who has watches is stored, its middle keyframe is saved as a small JPEG under
``<data_dir>/keyframes/`` and its mean luma goes to the ``event_frames`` table, with the luma of
the stream's previous event (what "gets dark" compares against).

With replicas on one database the event is seen by one replica, while the alert is evaluated by
another (the one holding the alert role) and its keyframe link may be followed through any: so on
a shared database the JPEG also goes into ``event_frames.image``, and a replica that lacks the
file fetches it from there once (into its own ``keyframes/`` directory, a cache).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.fsutil import write_atomic
from eventvstream.memory.alertdb import AlertDatabase
from eventvstream.pipeline.report import encode_thumbnail

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def mean_luma(images: list[np.ndarray]) -> float | None:
    """Mean brightness (0..1, Rec. 601 luma) of RGB uint8 images."""
    values = [
        float((np.asarray(image, np.float32)[..., :3] @ _LUMA).mean()) / 255.0
        for image in images
        if image is not None
    ]
    return None if not values else float(np.mean(values))


class KeyframeStore:
    def __init__(self, db: AlertDatabase, directory: Path) -> None:
        self.db = db
        self.dir = directory
        self.shared = bool(getattr(db.backend, "shared", False))
        self._lock = threading.Lock()
        self._last_luma: dict[tuple[str, str], float] = {}

    def capture(self, event: Any, event_id: int, stream: str, owner: str) -> None:
        images = [k.image for k in event.keyframes if k.image is not None]
        if not images:
            return
        luma = mean_luma(images)
        with self._lock:
            previous = self._last_luma.get((owner, stream))
            if previous is None:
                row = self.db.one(
                    "SELECT luma FROM event_frames WHERE event_id < ? ORDER BY event_id DESC "
                    "LIMIT 1",
                    (event_id,),
                )
                previous = None if row is None else row[0]
            if luma is not None:
                self._last_luma[(owner, stream)] = luma
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{event_id}.jpg"
        image: bytes | None = None
        if not path.exists():  # a merged slot keeps its first picture
            image = encode_thumbnail(images[len(images) // 2])
            write_atomic(path, image)
        if not self.shared:
            image = None  # one process: the file is enough
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO event_frames (event_id, luma, previous_luma, keyframe, image) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET "
                "luma = excluded.luma, previous_luma = excluded.previous_luma, "
                "keyframe = excluded.keyframe, "
                "image = COALESCE(excluded.image, event_frames.image)",
                (event_id, luma, previous, path.name, image),
            )

    def brightness(self, event_id: int) -> tuple[float | None, float | None]:
        row = self.db.one(
            "SELECT luma, previous_luma FROM event_frames WHERE event_id = ?", (event_id,)
        )
        return (None, None) if row is None else (row[0], row[1])

    def known(self, event_id: int) -> bool:
        """Whether the event's brightness (and keyframe) were captured, by any process."""
        row = self.db.one("SELECT 1 FROM event_frames WHERE event_id = ?", (event_id,))
        return row is not None

    def has(self, event_id: int) -> bool:
        if (self.dir / f"{event_id}.jpg").is_file():
            return True
        if not self.shared:
            return False
        row = self.db.one(
            "SELECT 1 FROM event_frames WHERE event_id = ? AND image IS NOT NULL", (event_id,)
        )
        return row is not None

    def path(self, event_id: int) -> Path | None:
        path = self.dir / f"{event_id}.jpg"
        if path.is_file():
            return path
        if not self.shared:
            return None
        row = self.db.one("SELECT image FROM event_frames WHERE event_id = ?", (event_id,))
        if row is None or row[0] is None:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, bytes(row[0]))  # seen through another replica: cached here
        return path
