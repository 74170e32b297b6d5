"""The one encoder protocol every perception backend implements.

Why a protocol: the event detector only needs "frames in, unit vectors out", so the packaged
EfficientNet (offline CPU default), open_clip (GPU profile, has a text tower) and tiny random
models (tests) are interchangeable behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class EncoderInfo:
    """What a caller may need to know about a loaded encoder."""

    backend: str
    model: str
    dim: int
    device: str
    dtype: str
    has_text: bool
    has_labels: bool
    runtime: str = "torch"  # what runs the forward: torch, or onnxruntime (CPU fp32)


@runtime_checkable
class ImageEncoder(Protocol):
    """Batched RGB uint8 images -> L2-normalised float32 features."""

    info: EncoderInfo

    def encode_images(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Encode a batch of HxWx3 uint8 RGB images (any sizes) to an (N, dim) float32 array
        whose rows have unit L2 norm."""
        ...

    def top_labels(
        self, images: list[np.ndarray] | np.ndarray, k: int
    ) -> list[list[tuple[str, float]]]:
        """Top-k (label, probability) per image; empty lists when the model has no labels."""
        ...

    def encode_and_label(
        self, images: list[np.ndarray] | np.ndarray, k: int
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Features and top-k labels from one forward pass (labels empty without a label set).
        The pipeline labels every frame this way, so keyframes never need a second pass."""
        ...

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 unit vectors in the image feature space. Raises
        :class:`NotImplementedError` when the model has no text tower (``info.has_text``)."""
        ...
