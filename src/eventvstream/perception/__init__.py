"""Perception: image/text encoders behind one protocol (see ``base.py``)."""

from eventvstream.perception.base import EncoderInfo, ImageEncoder

__all__ = ["EncoderInfo", "ImageEncoder"]
