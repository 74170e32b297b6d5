"""The one ingest step: store -> describe -> tell listeners, with a fake bank (the real bank has
its own integration tests). Listeners see typed records and can never break ingest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventvstream.config import load_settings
from eventvstream.events.types import Boundary, Event, Keyframe
from eventvstream.memory.bank import Stored
from eventvstream.pipeline.ingest import BaseListener, Ingest, IngestListener, StoredEvent


@dataclass
class FakeBank:
    """Merges every second event into the slot before it (as consolidation might)."""

    texts: dict[int, str] = field(default_factory=dict)
    adds: int = 0

    def add(self, values: dict[str, Any], **kwargs: Any) -> Stored:
        self.adds += 1
        merged = self.adds % 2 == 0
        return Stored(self.adds - int(merged), merged, None, "fake")

    def set_text(self, event_id: int, text: str, embedding: Any, **kwargs: Any) -> None:
        self.texts[event_id] = text

    def get(self, event_id: int) -> Any:
        return type("Row", (), {"start": 0.0, "end": 99.0, "wall_start": None})()


class FakeEmbedder:
    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), np.float32)


def event(start: float, end: float, label: str) -> Event:
    return Event(
        0,
        start,
        end,
        2,
        np.ones(4, np.float32),
        [Keyframe(start, 0, labels=[(label, 0.9)])],
        Boundary(start, "stream_start"),
        Boundary(end, "cue"),
    )


class Recorder(BaseListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, StoredEvent]] = []

    def event_stored(self, event: StoredEvent) -> None:
        self.seen.append(("stored", event))

    def event_merged(self, event: StoredEvent) -> None:
        self.seen.append(("merged", event))


class Broken(BaseListener):
    def event_stored(self, event: StoredEvent) -> None:
        raise RuntimeError("a listener bug")


def test_store_describes_new_slots_and_tells_listeners() -> None:
    bank = FakeBank()
    recorder = Recorder()
    ingest = Ingest(bank, FakeEmbedder(), None, load_settings("tiny").language)  # type: ignore[arg-type]
    ingest.add_listener(Broken())  # registered first: its exception must not stop the next one
    ingest.add_listener(recorder)
    first = ingest.store(event(0.0, 2.0, "dog"), stream="cam", origin="s1")
    second = ingest.store(event(2.0, 3.0, "cat"), stream="cam")
    assert [kind for kind, _ in recorder.seen] == ["stored", "merged"]
    assert (first.id, first.start, first.end, first.merged) == (1, 0.0, 2.0, False)
    assert first.text == "a video event showing dog" and first.origin == "s1"
    assert first.labels == [("dog", 0.9)] and first.boundary["reason"] == "cue"
    # A merged slot reports the slot's widened span and keeps its text until its caption.
    assert (second.id, second.merged, second.end) == (1, True, 99.0)
    assert bank.texts == {1: "a video event showing dog"}
    assert ingest.pending == 0  # no decoder: nothing to caption
    assert isinstance(recorder, IngestListener)


def test_removed_listeners_hear_nothing() -> None:
    recorder = Recorder()
    ingest = Ingest(FakeBank(), FakeEmbedder(), None, load_settings("tiny").language)  # type: ignore[arg-type]
    ingest.add_listener(recorder)
    ingest.remove_listener(recorder)
    ingest.store(event(0.0, 1.0, "dog"), stream="cam")
    assert recorder.seen == []
