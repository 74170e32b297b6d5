"""The engine's shared models, each behind one lock.

Why locks around the models: live batches, upload jobs, caption prompts and questions all call
the same encoder and text embedder from different threads. Two forward passes at once on a CPU
only fight for the same cores, and a Hugging Face fast tokenizer raises "Already borrowed" when two
threads use it together; one lock per model serialises them at the cost of nothing real.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from eventvstream.perception.base import ImageEncoder
from eventvstream.perception.text import TextEmbedder


class SharedEncoder:
    """An :class:`ImageEncoder` behind one lock (see the module docstring)."""

    def __init__(self, inner: ImageEncoder) -> None:
        self.inner = inner
        self.info = inner.info
        self.lock = threading.Lock()

    def encode_images(self, images: Any) -> np.ndarray:
        with self.lock:
            return self.inner.encode_images(images)

    def top_labels(self, images: Any, k: int) -> list[list[tuple[str, float]]]:
        with self.lock:
            return self.inner.top_labels(images, k)

    def encode_and_label(
        self, images: Any, k: int
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        with self.lock:
            return self.inner.encode_and_label(images, k)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            return self.inner.encode_text(texts)


class SharedEmbedder:
    """A :class:`TextEmbedder` behind one lock."""

    def __init__(self, inner: TextEmbedder) -> None:
        self.inner = inner
        self.info = inner.info
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed(texts)
