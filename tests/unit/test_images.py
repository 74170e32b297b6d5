"""Frames from image bytes: good images decode, hostile bytes get clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from eventvstream.errors import MediaError
from eventvstream.media.images import decode_image, resize_short_side, scaled_size


def encode(fmt: str, size=(64, 48)) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decodes_jpeg_and_png(fmt):
    image = decode_image(encode(fmt))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_a_clear_error(fmt):
    data = encode(fmt, (256, 256))
    with pytest.raises(MediaError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.code == "corrupt_image"


def test_unknown_bytes_are_rejected_before_decoding():
    with pytest.raises(MediaError) as info:
        decode_image(b"GIF89a" + b"\x00" * 100)
    assert info.value.code == "unsupported_image"
    with pytest.raises(MediaError):
        decode_image(b"")


def test_oversize_image_is_rejected_by_pixel_count():
    with pytest.raises(MediaError) as info:
        decode_image(encode("PNG", (200, 200)), max_pixels=10_000)
    assert info.value.code == "image_too_large"


def test_resize_keeps_aspect_and_never_upscales():
    assert scaled_size(1280, 720, 224) == (398, 224)
    assert scaled_size(100, 80, 224) == (100, 80)
    frame = np.zeros((720, 1280, 3), np.uint8)
    assert resize_short_side(frame, 224).shape == (224, 398, 3)
