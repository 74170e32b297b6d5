"""Event lifecycle messages (new / update / end with before and after), from row changes."""

from __future__ import annotations

import numpy as np

from eventvstream.memory.rows import EventRow
from eventvstream.serving.alerts.messages import Lifecycle


def row(caption: str | None = None, end: float = 5.0, merges: int = 0) -> EventRow:
    return EventRow(
        7, "door", "k1", None, None, 0.0, end, 10, np.zeros(4, np.float32), [], [["bird", 0.9]],
        {}, caption, "bird", None, merges, 1, 0.0, 0.0,
    )  # fmt: skip


def test_new_update_end_sequence():
    life = Lifecycle()
    first = life.changes(row(), None)
    assert [m["type"] for m in first] == ["new"]
    assert first[0]["before"] is None and first[0]["after"]["labels"] == ["bird"]
    assert life.changes(row(), None) == []  # nothing a subscriber can see changed
    merged = life.changes(row(end=9.0, merges=1), None)
    assert [m["type"] for m in merged] == ["update"]
    assert merged[0]["before"]["end"] == 5.0 and merged[0]["after"]["end"] == 9.0
    done = life.changes(row("a bird lands", end=9.0, merges=1), None)
    assert [m["type"] for m in done] == ["end"]
    assert done[0]["after"]["caption"] == "a bird lands"


def test_first_sight_with_a_caption_is_new_then_end():
    life = Lifecycle()
    assert [m["type"] for m in life.changes(row("done"), None)] == ["new", "end"]
