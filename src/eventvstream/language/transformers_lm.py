"""A transformers causal LM (LLaMA-style) that reads the perception text of an event.

The default profile runs the packaged SmolLM2-135M-Instruct on the CPU; any Hugging Face id or
local directory (e.g. Llama-3-8B-Instruct on a GPU) loads the same way through
:mod:`eventvstream.language.loading`. Messages are rendered with the tokenizer's own chat
template, so each model sees the prompt format it was trained on; keyframe images attached to
messages are ignored (a text LM gets them described in the perception text instead).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from eventvstream.config import LanguageSettings
from eventvstream.language.base import DecoderInfo, GenerationRequest
from eventvstream.language.hf_generate import stream_generate
from eventvstream.language.loading import load_causal_lm, model_name
from eventvstream.language.streaming import sync_to_async


class TransformersLMDecoder:
    def __init__(self, settings: LanguageSettings, device: str = "cpu") -> None:
        self.settings = settings
        self.model, self.tokenizer = load_causal_lm(settings, device)
        self.info = DecoderInfo("transformers", model_name(settings), device, accepts_images=False)
        # One generate at a time per model: concurrent generate calls on one module would
        # interleave their KV caches' memory and compete for the same cores anyway.
        self._lock = threading.Lock()

    def prompt_ids(self, request: GenerationRequest) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if getattr(self.tokenizer, "chat_template", None):
            encoded = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:  # a base model without a template: plain "role: text" lines
            text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
            encoded = self.tokenizer(text, return_tensors="pt")
        return {k: v.to(self.model.device) for k, v in encoded.items()}

    def count_tokens(self, request: GenerationRequest) -> int:
        return int(self.prompt_ids(request)["input_ids"].shape[1])

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        inputs = self.prompt_ids(request)
        with self._lock:
            yield from stream_generate(self.model, self.tokenizer, inputs, request)

    def astream(self, request: GenerationRequest) -> AsyncIterator[str]:
        return sync_to_async(lambda: self.stream(request), request.cancel)

    def close(self) -> None:
        self.model = None
