"""Frames from image bytes (JPEG/PNG), as a live client sends them.

Why strict: bytes from the network are hostile until proven otherwise. We check the magic
number before handing them to Pillow, refuse decompression bombs by pixel count before decoding,
and force a full decode so a truncated JPEG fails here (with a clear error) rather than later.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from eventvstream.errors import MediaError

_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def sniff_image_format(data: bytes) -> str | None:
    """Return "JPEG" or "PNG" from the leading bytes, or None."""
    for magic, name in _MAGIC.items():
        if data.startswith(magic):
            return name
    return None


def decode_image(data: bytes, *, max_pixels: int = 40_000_000) -> np.ndarray:
    """Decode JPEG/PNG bytes to an HxWx3 uint8 RGB array.

    Raises :class:`MediaError` with code ``unsupported_image``, ``image_too_large`` or
    ``corrupt_image``.
    """
    if not data:
        raise MediaError("empty image payload", code="corrupt_image")
    fmt = sniff_image_format(data)
    if fmt is None:
        raise MediaError("not a JPEG or PNG image (unrecognised header)", code="unsupported_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > max_pixels:
                raise MediaError(
                    f"image is {width}x{height}, over the {max_pixels} pixel limit",
                    code="image_too_large",
                )
            image.load()  # full decode now: a truncated file raises here, not later
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"image too large: {exc}", code="image_too_large") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError(f"corrupt or truncated {fmt}: {exc}", code="corrupt_image") from None
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side equal to ``short_side``, aspect kept, both even.

    Never upscales: a frame already smaller than ``short_side`` keeps its size.
    """
    short = min(width, height)
    if short <= short_side:
        return width, height
    scale = short_side / short
    new_w = max(2, round(width * scale / 2) * 2)
    new_h = max(2, round(height * scale / 2) * 2)
    return new_w, new_h


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Resize an RGB frame so live frames match what the video reader produces."""
    height, width = image.shape[:2]
    new_w, new_h = scaled_size(width, height, short_side)
    if (new_w, new_h) == (width, height):
        return image
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)
