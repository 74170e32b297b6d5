"""The one way to load an encoder from settings.

Everything a caller can get wrong about a model (unknown backend or name, missing or corrupt
checkpoint, a hub download with no network, ``device: cuda`` without a GPU) surfaces here as a
:class:`~eventvstream.errors.ModelLoadError` with a message that says what to change, before any
video is decoded.

Hub downloads never hang: the open_clip backend loads cached weights without the network, and
otherwise probes the download host (3 s timeout) and honours ``HF_HUB_OFFLINE=1`` before letting
huggingface_hub start its retry loop.
"""

from __future__ import annotations

import logging

import torch

from eventvstream.config import EncoderSettings
from eventvstream.errors import ModelLoadError
from eventvstream.perception.base import ImageEncoder
from eventvstream.perception.devices import resolve_device, resolve_dtype

log = logging.getLogger(__name__)

BACKENDS = ("efficientnet", "open_clip")


def load_encoder(settings: EncoderSettings, device: str = "auto") -> ImageEncoder:
    """Build the encoder ``settings`` describe on ``device`` (auto, cpu, cuda, cuda:N).

    ``settings.threads`` sets torch's intra-op thread count, which is process-wide: the last
    encoder loaded wins. Loading is not cached; keep the returned encoder for the session.
    """
    if settings.backend not in BACKENDS:
        raise ModelLoadError(
            f"unknown encoder backend {settings.backend!r}; use one of {', '.join(BACKENDS)}"
        )
    torch_device = resolve_device(device)
    dtype = resolve_dtype(settings.precision, torch_device)
    if settings.threads is not None and torch.get_num_threads() != settings.threads:
        torch.set_num_threads(settings.threads)
        log.info("torch CPU threads set to %d", settings.threads)

    encoder: ImageEncoder
    if settings.backend == "efficientnet":
        if settings.model_config_json is not None:
            raise ModelLoadError(
                "encoder.model_config_json applies only to the open_clip backend; remove it or "
                "set encoder.backend: open_clip"
            )
        from eventvstream.perception.efficientnet import EfficientNetEncoder

        encoder = EfficientNetEncoder.from_settings(settings, torch_device, dtype)
    else:
        from eventvstream.perception.openclip import OpenClipEncoder

        encoder = OpenClipEncoder.from_settings(settings, torch_device, dtype)
    info = encoder.info
    log.info(
        "encoder %s/%s loaded: dim=%d device=%s dtype=%s runtime=%s",
        info.backend,
        info.model,
        info.dim,
        info.device,
        info.dtype,
        info.runtime,
    )
    return encoder
