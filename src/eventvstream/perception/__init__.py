"""Perception: image/text encoders behind one protocol (see ``base.py``), and the sentence
embedder the memory bank uses for captions and questions (see ``text.py``).

``load_encoder`` and the text embedder names are imported lazily so that
``from eventvstream.perception import EncoderInfo`` (used by the torch-free event layer and tests)
does not pay for importing torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventvstream.perception.base import EncoderInfo, ImageEncoder

if TYPE_CHECKING:
    from eventvstream.perception.factory import load_encoder
    from eventvstream.perception.text import TextEmbedder, TextEmbedderInfo, load_text_embedder

__all__ = [
    "EncoderInfo",
    "ImageEncoder",
    "TextEmbedder",
    "TextEmbedderInfo",
    "load_encoder",
    "load_text_embedder",
]

_TEXT_NAMES = frozenset({"TextEmbedder", "TextEmbedderInfo", "load_text_embedder"})


def __getattr__(name: str) -> Any:
    if name == "load_encoder":
        from eventvstream.perception.factory import load_encoder

        return load_encoder
    if name in _TEXT_NAMES:
        from eventvstream.perception import text

        return getattr(text, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
