"""The serving logic with a fake encoder (no model, no memory bank on disk): which frame the
bounded queue drops, round-robin fairness across sessions, the encoder/writer threads handing
events to the ingest step, and upload events shifted onto the stream's timeline.

The fakes stand in for the encoder, the memory bank and the ingest step, which have their own
integration tests; here only the serving bookkeeping is under test."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from eventvstream.config import Settings, load_settings
from eventvstream.events.types import Boundary, Event, Keyframe
from eventvstream.perception.base import EncoderInfo
from eventvstream.serving.jobs import UploadJob, UploadRunner, shift_event
from eventvstream.serving.live import LiveIngest
from eventvstream.serving.metrics import EngineMetrics
from eventvstream.serving.session import LiveSession

DIM = 8


class FakeEncoder:
    """Deterministic features: a frame's mean brightness picks the direction."""

    info = EncoderInfo("fake", "fake", DIM, "cpu", "float32", has_text=False, has_labels=False)

    def __init__(self) -> None:
        self.batches: list[int] = []

    def encode_images(self, images: Any) -> np.ndarray:
        self.batches.append(len(images))
        out = np.zeros((len(images), DIM), np.float32)
        for i, image in enumerate(images):
            out[i, int(np.asarray(image).mean()) % DIM] = 1.0
        return out


@dataclass
class FakeBank:
    last_end: float | None = None

    def last_of_stream(self, stream: str, owner: str) -> Any:
        return None if self.last_end is None else type("Row", (), {"end": self.last_end})()

    def count(self, *, stream: str, owner: str) -> int:
        return 0 if self.last_end is None else 1

    def begin_source(self, source: str, **kwargs: Any) -> bool:
        return True

    def finish_source(self, source: str, count: int) -> None:
        pass


class FakeStreams:
    def ensure(self, owner: str, stream: str) -> bool:
        return True


@dataclass
class FakeIngest:
    stored: list[dict[str, Any]] = field(default_factory=list)

    def store(self, event: Event, **kwargs: Any) -> None:
        self.stored.append({"event": event, **kwargs})


def settings(**changes: Any) -> Settings:
    base = load_settings("tiny")
    server = base.server.model_copy(update={"frame_queue": changes.pop("frame_queue", 8)})
    encoder = base.encoder.model_copy(update={"batch_size": changes.pop("batch_size", 4)})
    language = base.language.model_copy(update={"trigger": "interval", "interval_s": 1.0})
    sampling = base.sampling.model_copy(update={"fps": 2.0})
    return base.model_copy(
        update={"server": server, "encoder": encoder, "language": language, "sampling": sampling}
    )


def session(queue_size: int = 8, stream: str = "cam") -> LiveSession:
    return LiveSession(
        stream, "", settings(), queue_size=queue_size, last_end=0.0, events_in_memory=0
    )


def feed(s: LiveSession, times: list[float]) -> int:
    dropped = 0
    for t in times:
        admitted = s.admit(t)
        assert admitted is not None
        dropped += s.push(admitted, np.zeros((4, 4, 3), np.uint8), time.monotonic(), t)
    return dropped


def test_a_full_queue_drops_the_oldest_frame() -> None:
    s = session(queue_size=3)
    assert feed(s, [0.0, 0.5, 1.0]) == 0
    assert feed(s, [1.5, 2.0]) == 2  # two over: the two oldest go
    kept = [s.take() for _ in range(4)]
    assert [f.t for f in kept if f is not None] == [1.0, 1.5, 2.0]  # the newest survive
    assert kept[-1] is None
    assert s.dropped == 2 and s.status(time.monotonic(), 0).frames_dropped == 2


def test_frames_faster_than_the_fps_are_skipped_by_timestamp() -> None:
    s = session()
    assert s.admit(0.0) is not None
    s.push(0.0, np.zeros((4, 4, 3), np.uint8), time.monotonic(), 0.0)
    assert s.admit(0.2) is None  # same 0.5 s tick at 2 fps
    assert s.admit(0.5) is not None
    assert s.skipped == 1


def test_a_session_maps_its_stream_times_to_the_wall_clock() -> None:
    """The first queued frame anchors the session: its capture time when the producer knows it
    (a pull source), else the time it was received; a resumed stream's times are shifted onto
    its timeline but the anchor keeps the wall clock."""
    image = np.zeros((4, 4, 3), np.uint8)
    pulled = LiveSession("cam", "", settings(), queue_size=8, last_end=50.0, events_in_memory=3)
    assert pulled.wall_at(10.0) is None  # no frame yet
    t = pulled.admit(0.0)
    assert t == 50.5  # resumed: one sampling step after the last stored event
    pulled.push(t, image, time.monotonic(), 0.0, wall=1_800_000_000.0)
    assert pulled.wall_at(50.5) == 1_800_000_000.0
    assert pulled.wall_at(60.5) == 1_800_000_010.0  # stream seconds are wall seconds
    later = pulled.admit(1.0)
    pulled.push(later, image, time.monotonic(), 1.0, wall=1_800_000_999.0)
    assert pulled.wall_at(50.5) == 1_800_000_000.0  # the first frame is the anchor

    client = session()
    received = time.monotonic() - 2.0  # arrived two seconds ago
    before = time.time()
    client.push(client.admit(7.0), image, received, 7.0)
    assert before - 2.5 < client.wall_at(7.0) < time.time() - 1.5
    client.restart_timeline()
    assert client.wall_at(7.0) is None


def idle_live(**changes: Any) -> LiveIngest:
    """A LiveIngest whose threads are stopped, so batches can be taken by hand."""
    live = LiveIngest(
        settings(**changes),
        EngineMetrics(),
        FakeEncoder(),  # type: ignore[arg-type]
        FakeBank(),  # type: ignore[arg-type]
        FakeStreams(),  # type: ignore[arg-type]
        FakeIngest(),  # type: ignore[arg-type]
    )
    live.stop()
    return live


def test_batches_are_round_robin_across_sessions() -> None:
    live = idle_live(batch_size=4)
    busy = live.open_session("", "busy", websocket=True)
    quiet = live.open_session("", "quiet", websocket=True)
    feed(busy, [i * 0.5 for i in range(8)])
    feed(quiet, [0.0, 0.5])
    first = live._take_batch()
    names = [s.stream for s, _ in first]
    assert sorted(names) == ["busy", "busy", "quiet", "quiet"]  # the quiet one is not starved
    assert names[0] != names[1]  # interleaved, one per session per turn
    second = live._take_batch()
    assert [s.stream for s, _ in second] == ["busy"] * 4  # then the rest of the busy one
    busy_times = [f.t for owner, f in first + second if owner.stream == "busy"]
    assert busy_times == [i * 0.5 for i in range(6)]  # in order, none lost


def test_the_first_session_served_rotates() -> None:
    live = idle_live(batch_size=1)
    a = live.open_session("", "a", websocket=True)
    b = live.open_session("", "b", websocket=True)
    feed(a, [0.0, 0.5, 1.0])
    feed(b, [0.0, 0.5, 1.0])
    order = [live._take_batch()[0][0].stream for _ in range(4)]
    assert order == ["a", "b", "a", "b"]


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_live_frames_reach_the_ingest_step_with_their_session() -> None:
    """Encoder thread + writer thread end to end: units close every 1 s (interval trigger) and
    go to the ingest step tagged with the session; closing the session flushes the open one."""
    ingest = FakeIngest()
    encoder = FakeEncoder()
    live = LiveIngest(
        settings(),
        EngineMetrics(),
        encoder,  # type: ignore[arg-type]
        FakeBank(),  # type: ignore[arg-type]
        FakeStreams(),  # type: ignore[arg-type]
        ingest,  # type: ignore[arg-type]
    )
    try:
        s = live.open_session("owner", "cam", websocket=True)

        async def send() -> None:
            for i in range(6):
                await live.ingest_frame(s, i * 0.5, png(10 * i), time.monotonic())

        asyncio.run(send())
        live.close_session(s)
        assert s.flushed.wait(10)
    finally:
        live.stop()
    spans = [(r["event"].start, r["event"].end) for r in ingest.stored]
    assert spans == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    assert all(r["origin"] == s.id and r["owner"] == "owner" for r in ingest.stored)
    assert all(r["source"] == "live:cam" and r["caption"] is True for r in ingest.stored)
    assert sum(encoder.batches) == 6 and s.processed == 6


def test_a_corrupt_frame_is_reported_to_its_session_only() -> None:
    live = idle_live()
    s = live.open_session("", "cam", websocket=True)
    seen: list[Any] = []
    s.emit = seen.append  # type: ignore[method-assign]
    broken = png(5)[:40]  # PNG magic, truncated body: found when the encoder thread decodes it
    asyncio.run(live.ingest_frame(s, 0.0, broken, time.monotonic()))
    assert live._decoded(live._take_batch()) == []
    assert len(seen) == 1 and seen[0].code == "bad_frame" and s.bad == 1


def event(start: float, end: float) -> Event:
    return Event(
        index=0,
        start=start,
        end=end,
        frame_count=2,
        embedding=np.ones(DIM, np.float32),
        keyframes=[Keyframe(start, 0), Keyframe(end - 0.1, 1)],
        opened_by=Boundary(start, "stream_start"),
        closed_by=Boundary(end, "cue", threshold=2.0, fired_at=end + 0.5),
    )


def test_shift_event_moves_span_keyframes_and_boundaries() -> None:
    moved = shift_event(event(1.0, 3.0), 10.0)
    assert (moved.start, moved.end) == (11.0, 13.0)
    assert [k.t for k in moved.keyframes] == [11.0, pytest.approx(12.9)]
    assert moved.opened_by.t == 11.0
    assert (moved.closed_by.t, moved.closed_by.fired_at) == (13.0, 13.5)


def test_an_upload_continues_the_stream_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's events are stored after the stream's last event, in order, with their index."""
    import eventvstream.pipeline.segmenter as segmenter_module

    class FakeSegmenter:
        def __init__(self, settings: Settings, encoder: Any) -> None:
            pass

        def segment(self, path: Any, **kwargs: Any) -> Any:
            return iter([event(0.0, 2.0), event(2.0, 5.0)])

    monkeypatch.setattr(segmenter_module, "Segmenter", FakeSegmenter)
    ingest = FakeIngest()
    runner = UploadRunner(
        settings(),
        FakeEncoder(),  # type: ignore[arg-type]
        FakeBank(last_end=30.0),  # type: ignore[arg-type]
        ingest,  # type: ignore[arg-type]
    )
    job = UploadJob("owner", "cam", path=Path("/nonexistent"), digest="ab")
    assert runner(job, threading.Event()) == 2
    assert [(r["event"].start, r["event"].end) for r in ingest.stored] == [
        (30.0, 32.0),
        (32.0, 35.0),
    ]
    assert [r["source_index"] for r in ingest.stored] == [0, 1]
    assert all(r["source"] == job.source and r["stream"] == "cam" for r in ingest.stored)


def test_the_engine_implements_the_facade_the_api_uses() -> None:
    """Every method of EngineFacade exists on Engine with the same parameters (the API is
    typed against the facade; a drift would only show at run time otherwise)."""
    import inspect

    from eventvstream.serving.engine import Engine
    from eventvstream.serving.facade import EngineFacade

    names = [n for n in vars(EngineFacade) if not n.startswith("_")]
    assert "open_session" in names and "add_listener" in names
    for name in names:
        facade, actual = getattr(EngineFacade, name), getattr(Engine, name)
        if callable(facade) and not isinstance(facade, property):
            expected = list(inspect.signature(facade).parameters)
            assert list(inspect.signature(actual).parameters) == expected, name
    for name in EngineFacade.__annotations__:
        engine = Engine(load_settings("tiny"))
        assert hasattr(engine, name), name
