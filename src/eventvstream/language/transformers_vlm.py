"""A transformers vision-language model that looks at an event's keyframes.

Where the text LM backend (:mod:`eventvstream.language.transformers_lm`) only reads what
perception wrote about an event, this backend also sees the frames, so captions can name things
no detector labelled. Any model ``AutoModelForImageTextToText`` knows loads the same way
(Qwen2.5-VL, SmolVLM, LLaVA variants, from a hub id or a local directory); the prompt is built
with the processor's own chat template, so each model gets its image placeholders in the format
it was trained on, and the processor expands them into the right number of image tokens.

CI runs the identical code path with a random tiny LLaVA (:data:`TINY_LLAVA_CONFIG`), built by
:func:`eventvstream.language.loading.load_vision_lm` when ``language.model_config_json`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eventvstream.config import LanguageSettings
from eventvstream.language.base import DecoderInfo, GenerationRequest
from eventvstream.language.hf_generate import HFDecoderBase
from eventvstream.language.loading import load_vision_lm, model_name

#: Images per request, at most. Every image costs hundreds of prompt tokens (576 for LLaVA-1.5,
#: roughly 300-1300 for Qwen2.5-VL depending on resolution), so an event with dozens of
#: keyframes would overflow a small model's context and the prefill memory of a large one.
#: Keyframes of one event are alike; 8 evenly spaced ones keep its beginning, middle and end.
MAX_IMAGES = 8

#: ``language.model_config_json`` for a random tiny LLaVA (about 3 M parameters, nearly all in
#: the SmolLM2-sized embedding and head) on the tokenizer of ``language.model``: a 2-layer CLIP
#: vision tower over 32x32 images (16 patches of 8x8) and a 2-layer LLaMA. ``vocab_size`` and
#: ``image_token_index`` are derived from the tokenizer; keys under "vision"/"text" go to
#: ``CLIPVisionConfig``/``LlamaConfig`` as they are.
TINY_LLAVA_CONFIG: dict[str, Any] = {
    "architecture": "llava",
    "image_token": "<image>",
    "vision_feature_select_strategy": "default",
    "vision_feature_layer": -1,
    "vision": {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    },
    "text": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 2048,
    },
}


def keep_evenly(count: int, limit: int = MAX_IMAGES) -> list[int]:
    """Indices of at most ``limit`` of ``count`` items, evenly spaced, first and last kept."""
    if count <= limit:
        return list(range(count))
    return [int(i) for i in np.linspace(0, count - 1, num=limit).round()]


def _to_pil(image: np.ndarray) -> Any:
    """Processors accept numpy arrays, but guess channel order from the shape; PIL images are
    unambiguous for every processor, and grey or RGBA frames become RGB on the way."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")


class TransformersVLMDecoder(HFDecoderBase):
    def __init__(self, settings: LanguageSettings, device: str = "cpu") -> None:
        super().__init__()
        self.settings = settings
        self.model, self.processor = load_vision_lm(settings, device)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.info = DecoderInfo(
            backend="transformers_vlm",
            model=model_name(settings),
            device=str(device),
            accepts_images=True,
        )

    def conversation(self, request: GenerationRequest) -> tuple[list[dict[str, Any]], list[Any]]:
        """(chat-template messages, PIL images in prompt order). Each message's images become
        ``{"type": "image"}`` parts before its text, where VLMs are trained to expect them."""
        kept = set(keep_evenly(len(request.images)))
        index = 0
        messages: list[dict[str, Any]] = []
        images: list[Any] = []
        for message in request.messages:
            parts: list[dict[str, Any]] = []
            for image in message.images:
                if index in kept:
                    parts.append({"type": "image"})
                    images.append(_to_pil(image))
                index += 1
            parts.append({"type": "text", "text": message.content})
            messages.append({"role": message.role, "content": parts})
        return messages, images

    def prompt_inputs(self, request: GenerationRequest) -> dict[str, Any]:
        """Model inputs (token ids, attention mask, pixel values...) on the model's device."""
        messages, images = self.conversation(request)
        if getattr(self.processor, "chat_template", None):
            text = self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        else:  # a processor without a template: "role: <image>...text" lines
            token = getattr(self.processor, "image_token", "<image>")
            lines = [
                f"{m['role']}: "
                + "".join(token if p["type"] == "image" else p["text"] for p in m["content"])
                for m in messages
            ]
            text = "\n".join(lines) + "\nassistant:"
        encoded = self.processor(text=[text], images=images or None, return_tensors="pt")
        device, dtype = self.model.device, self.model.dtype
        return {
            key: value.to(device, dtype=dtype) if value.is_floating_point() else value.to(device)
            for key, value in encoded.items()
            if hasattr(value, "to")
        }
