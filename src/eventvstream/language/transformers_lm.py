"""A transformers causal LM (LLaMA-style) that reads the perception text of an event.

The default profile runs the packaged SmolLM2-135M-Instruct on the CPU; any Hugging Face id or
local directory (e.g. Llama-3-8B-Instruct on a GPU) loads the same way through
:mod:`eventvstream.language.loading`. Messages are rendered with the tokenizer's own chat
template, so each model sees the prompt format it was trained on; keyframe images attached to
messages are ignored (a text LM gets them described in the perception text instead).
"""

from __future__ import annotations

from typing import Any

from eventvstream.config import LanguageSettings
from eventvstream.language.base import DecoderInfo, GenerationRequest
from eventvstream.language.hf_generate import HFDecoderBase
from eventvstream.language.loading import load_causal_lm, model_name


class TransformersLMDecoder(HFDecoderBase):
    def __init__(self, settings: LanguageSettings, device: str = "cpu") -> None:
        super().__init__()
        self.settings = settings
        self.model, self.tokenizer = load_causal_lm(settings, device)
        self.info = DecoderInfo("transformers", model_name(settings), device, accepts_images=False)

    def prompt_inputs(self, request: GenerationRequest) -> dict[str, Any]:
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
        return int(self.prompt_inputs(request)["input_ids"].shape[1])
