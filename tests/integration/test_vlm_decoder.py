"""The transformers vision-language backend, end to end on a random tiny LLaVA.

The model is random, so its text is noise; what is checked is the plumbing a real VLM relies on:
keyframes reach the vision tower and change the output, budgets and cancellation hold, and the
async bridge delivers the same deltas.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eventvstream.config import LanguageSettings
from eventvstream.errors import ModelLoadError
from eventvstream.language.base import ChatMessage, Decoder, GenerationRequest
from eventvstream.language.transformers_vlm import (
    MAX_IMAGES,
    TINY_LLAVA_CONFIG,
    TransformersVLMDecoder,
    keep_evenly,
)

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def decoder() -> TransformersVLMDecoder:
    settings = LanguageSettings(
        backend="transformers_vlm", model="packaged", model_config_json=TINY_LLAVA_CONFIG
    )
    return TransformersVLMDecoder(settings, device="cpu")


def frames(seed: int, *shapes: tuple[int, int]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def request(images: list[np.ndarray], max_new_tokens: int = 8, **kw: Any) -> GenerationRequest:
    messages = [
        ChatMessage("system", "Describe the event in one sentence."),
        ChatMessage("user", "What happens in these keyframes?", images=images),
    ]
    return GenerationRequest(messages, max_new_tokens=max_new_tokens, **kw)


def vision_tower(model: Any) -> Any:
    return getattr(model, "vision_tower", None) or model.model.vision_tower


class Counter:
    """Forward hook that records the batch size of each call."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        tensor = args[0] if args else next(iter(kwargs.values()))
        self.batches.append(int(tensor.shape[0]))


def test_info(decoder: TransformersVLMDecoder) -> None:
    assert isinstance(decoder, Decoder)
    assert decoder.info.backend == "transformers_vlm"
    assert decoder.info.accepts_images and decoder.info.device == "cpu"


def test_keyframes_reach_the_vision_tower(decoder: TransformersVLMDecoder) -> None:
    tower, head = Counter(), Counter()
    hooks = [
        vision_tower(decoder.model).register_forward_hook(tower, with_kwargs=True),
        decoder.model.lm_head.register_forward_hook(head, with_kwargs=True),
    ]
    try:
        deltas = list(decoder.stream(request(frames(0, (48, 64), (90, 120)), max_new_tokens=6)))
    finally:
        for hook in hooks:
            hook.remove()
    assert deltas and all(deltas)
    assert tower.batches == [2]  # both images, once: the KV cache keeps them afterwards
    assert 1 <= len(head.batches) <= 6  # one forward per generated token, within the budget
    assert len(deltas) <= 6 + 1  # a delta per token at most, plus the streamer's final flush


def test_images_change_the_first_step_logits(decoder: TransformersVLMDecoder) -> None:
    def last_logits(images: list[np.ndarray]) -> Any:
        with torch.inference_mode():
            return decoder.model(**decoder.prompt_inputs(request(images))).logits[0, -1]

    a = last_logits(frames(1, (48, 64), (90, 120)))
    assert torch.equal(a, last_logits(frames(1, (48, 64), (90, 120))))
    assert not torch.allclose(a, last_logits(frames(2, (48, 64), (90, 120))))


def test_prompt_has_one_image_token_per_vision_feature(decoder: TransformersVLMDecoder) -> None:
    config = decoder.model.config
    inputs = decoder.prompt_inputs(request(frames(3, (48, 64), (90, 120), (32, 32))))
    n_tokens = int((inputs["input_ids"] == config.image_token_index).sum())
    assert inputs["pixel_values"].shape[0] == 3
    assert n_tokens == 3 * config.image_seq_length == 3 * 16


def test_images_are_capped_evenly(decoder: TransformersVLMDecoder) -> None:
    assert keep_evenly(3) == [0, 1, 2]
    assert keep_evenly(20, 8)[0] == 0 and keep_evenly(20, 8)[-1] == 19
    assert len(set(keep_evenly(20, 8))) == 8
    inputs = decoder.prompt_inputs(request(frames(4, *[(40, 40)] * 20)))
    assert inputs["pixel_values"].shape[0] == MAX_IMAGES


def test_text_only_and_sampling(decoder: TransformersVLMDecoder) -> None:
    messages = [ChatMessage("user", "Hello?")]
    assert list(decoder.stream(GenerationRequest(messages, max_new_tokens=4)))
    sampled = GenerationRequest(messages, max_new_tokens=4, temperature=0.8)
    assert len(list(decoder.stream(sampled))) <= 4


def test_cancel_before_start_yields_nothing(decoder: TransformersVLMDecoder) -> None:
    req = request(frames(5, (48, 64)), max_new_tokens=50)
    req.cancel.set()
    assert list(decoder.stream(req)) == []


def test_cancel_mid_stream_stops_at_once(decoder: TransformersVLMDecoder) -> None:
    head = Counter()
    hook = decoder.model.lm_head.register_forward_hook(head, with_kwargs=True)
    req = request(frames(6, (48, 64)), max_new_tokens=400)
    try:
        deltas = []
        for delta in decoder.stream(req):
            deltas.append(delta)
            req.cancel.set()
    finally:
        hook.remove()
    assert 1 <= len(deltas) <= 3
    assert len(head.batches) < 20  # stopped within a token or two, not after 400


def test_astream_matches_stream(decoder: TransformersVLMDecoder) -> None:
    images = frames(7, (48, 64), (90, 120))
    expected = list(decoder.stream(request(images)))

    async def collect() -> list[str]:
        return [delta async for delta in decoder.astream(request(images))]

    assert asyncio.run(collect()) == expected
    assert threading.active_count() < 50  # worker threads end with their streams


def test_saved_model_loads_through_the_auto_classes(
    decoder: TransformersVLMDecoder, tmp_path: Path
) -> None:
    """The real-model path (AutoProcessor + AutoModelForImageTextToText from a local directory)
    on the tiny model saved to disk: same prompt, same greedy output."""
    decoder.model.save_pretrained(tmp_path)
    decoder.processor.save_pretrained(tmp_path)
    loaded = TransformersVLMDecoder(
        LanguageSettings(backend="transformers_vlm", model=str(tmp_path))
    )
    images = frames(8, (48, 64), (90, 120))
    ids = [d.prompt_inputs(request(images))["input_ids"] for d in (decoder, loaded)]
    assert torch.equal(ids[0], ids[1])
    assert list(loaded.stream(request(images))) == list(decoder.stream(request(images)))


def test_bad_local_path_is_a_model_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-vlm"
    settings = LanguageSettings(backend="transformers_vlm", model=str(missing))
    with pytest.raises(ModelLoadError, match=str(missing)):
        TransformersVLMDecoder(settings)
    empty = tmp_path / "empty"
    empty.mkdir()
    settings = LanguageSettings(backend="transformers_vlm", model=str(empty))
    with pytest.raises(ModelLoadError, match=str(empty)):
        TransformersVLMDecoder(settings)
