"""``load_decoder``: the one entry point that turns ``language`` settings into a decoder."""

from __future__ import annotations

from eventvstream.config import Settings
from eventvstream.language.base import Decoder


def load_decoder(settings: Settings) -> Decoder | None:
    """The configured decoder, loaded and ready; ``None`` for ``backend: none``."""
    language = settings.language
    if language.backend == "none":
        return None
    if language.backend == "openai":
        from eventvstream.language.openai_compat import OpenAIDecoder

        return OpenAIDecoder(language)
    from eventvstream.perception.devices import resolve_device

    device = str(resolve_device(settings.device))
    if language.threads is not None:
        import torch

        torch.set_num_threads(language.threads)
    if language.backend == "transformers_vlm":
        from eventvstream.language.transformers_vlm import TransformersVLMDecoder

        return TransformersVLMDecoder(language, device)
    from eventvstream.language.transformers_lm import TransformersLMDecoder

    return TransformersLMDecoder(language, device)
