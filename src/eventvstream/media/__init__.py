"""Media: frame sources (video files, image bytes), sampling and timestamps."""

from eventvstream.media.images import decode_image, resize_short_side
from eventvstream.media.video import FrameChunk, VideoInfo, VideoStream, open_video

__all__ = [
    "FrameChunk",
    "VideoInfo",
    "VideoStream",
    "decode_image",
    "open_video",
    "resize_short_side",
]
