"""How a keyframe looks and how the camera moved: brightness, colour, still/panning/zooming.

The decoder is told these words because the classifier's labels say nothing about them, and a
caption that says "a dark, mostly blue scene, the camera panning" is true even when the labels
are unclear. All of it is cheap arithmetic on small grey/RGB thumbnails (no model): mean
brightness, the dominant hue of saturated pixels, and between two keyframes the frame difference
plus the global shift found by phase correlation (panning) or a better match after scaling
(zooming).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_SIDE = 64  # thumbnails are resized to this square for the motion estimates
_HUES = [  # (upper bound of hue in degrees, name)
    (15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"),
    (260, "blue"), (300, "purple"), (340, "pink"), (360, "red"),
]  # fmt: skip


def _thumb(image: np.ndarray) -> np.ndarray:
    """Grey float thumbnail in [0, 1], nearest-neighbour resized to _SIDE x _SIDE."""
    grey = image[..., :3].astype(np.float32).mean(axis=2) / 255.0
    rows = np.linspace(0, grey.shape[0] - 1, _SIDE).astype(int)
    cols = np.linspace(0, grey.shape[1] - 1, _SIDE).astype(int)
    return grey[np.ix_(rows, cols)]


def look_of(image: np.ndarray) -> dict[str, Any]:
    """Brightness (0-1) and the dominant colour name ("grey" when little is saturated)."""
    rgb = image[::4, ::4, :3].astype(np.float32) / 255.0
    brightness = float(rgb.mean())
    top, bottom = rgb.max(axis=2), rgb.min(axis=2)
    chroma = top - bottom
    saturated = chroma > 0.2
    colour = "grey"
    if saturated.mean() > 0.15:
        r, g, b = (rgb[..., i][saturated] for i in range(3))
        c = chroma[saturated]
        mx = top[saturated]
        hue = np.where(
            mx == r, ((g - b) / c) % 6, np.where(mx == g, (b - r) / c + 2, (r - g) / c + 4)
        )
        counts = np.histogram(hue * 60.0, bins=36, range=(0, 360))[0]
        degrees = (int(np.argmax(counts)) + 0.5) * 10
        colour = next(name for bound, name in _HUES if degrees <= bound)
    return {"brightness": round(brightness, 3), "colour": colour}


def camera_motion(previous: np.ndarray, current: np.ndarray) -> str:
    """'still', 'panning', 'zooming' or 'fast motion' between two frames of one event."""
    a, b = _thumb(previous), _thumb(current)
    change = float(np.abs(a - b).mean())
    if change < 0.03:
        return "still"
    # Phase correlation: a clear single peak away from the origin is a global shift (panning).
    fa, fb = np.fft.fft2(a - a.mean()), np.fft.fft2(b - b.mean())
    cross = fa * np.conj(fb)
    surface = np.abs(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    peak = np.unravel_index(int(np.argmax(surface)), surface.shape)
    dy, dx = (p if p <= _SIDE // 2 else p - _SIDE for p in peak)
    if surface.max() > 0.15 and max(abs(dx), abs(dy)) >= 2:
        return "panning"
    # Zooming: the next frame matches a scaled copy of the previous much better than itself.
    for scale in (1.15, 1 / 1.15):
        if float(np.abs(_zoom(a, scale) - b).mean()) < 0.7 * change:
            return "zooming"
    return "fast motion"


def _zoom(grey: np.ndarray, scale: float) -> np.ndarray:
    """The centre of ``grey`` magnified by ``scale`` (or shrunk, edge-padded), same size."""
    centre = (_SIDE - 1) / 2
    coords = np.clip(np.round(centre + (np.arange(_SIDE) - centre) / scale), 0, _SIDE - 1)
    index = coords.astype(int)
    return grey[np.ix_(index, index)]


def brightness_word(brightness: float) -> str | None:
    if brightness < 0.15:
        return "very dark"
    if brightness < 0.3:
        return "dark"
    if brightness > 0.75:
        return "bright"
    return None
