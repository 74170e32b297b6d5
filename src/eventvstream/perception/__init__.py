"""Perception: image/text encoders behind one protocol (see ``base.py``).

``load_encoder`` is imported lazily so that ``from eventvstream.perception import EncoderInfo``
(used by the torch-free event layer and tests) does not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventvstream.perception.base import EncoderInfo, ImageEncoder

if TYPE_CHECKING:
    from eventvstream.perception.factory import load_encoder

__all__ = ["EncoderInfo", "ImageEncoder", "load_encoder"]


def __getattr__(name: str) -> Any:
    if name == "load_encoder":
        from eventvstream.perception.factory import load_encoder

        return load_encoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
