"""Pipeline: wiring media, perception and events (later memory and language) per stream."""

from eventvstream.pipeline.segmenter import Segmenter, segment_file

__all__ = ["Segmenter", "segment_file"]
