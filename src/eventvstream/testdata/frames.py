"""Pixels and truth of a :class:`ClipSpec`: every frame as an array, and where its boundaries
are. Times are seconds from the first frame (frame ``i`` is at ``i / fps``); boundaries are
snapped to the frame grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from eventvstream.testdata.spec import FADE_HOLD, ClipSpec, Transition, View, load_photo


def _crop_box(img: Image.Image, view: View, aspect: float) -> tuple[float, float, float, float]:
    """The sub-pixel crop (x0, y0, x1, y1) with the output aspect, kept inside the photo."""
    w, h = img.size
    cw, ch = (h * aspect, float(h)) if w / h > aspect else (float(w), w / aspect)
    cw, ch = cw * view.size, ch * view.size
    x0 = min(max(view.cx * w - cw / 2, 0.0), w - cw)
    y0 = min(max(view.cy * h - ch / 2, 0.0), h - ch)
    return (x0, y0, x0 + cw, y0 + ch)


class _Timeline:
    """Boundary times snapped to the frame grid, and which shots are visible at a time."""

    def __init__(self, spec: ClipSpec, fps: float) -> None:
        self.spec, self.fps = spec, fps
        cum = np.cumsum([s.duration for s in spec.shots])
        self.n_frames = round(cum[-1] * fps)
        self.bounds = [0.0] + [round(c * fps) / fps for c in cum[:-1]]  # bounds[k]: shot k starts
        half = [0.0] + [t.duration / 2 for t in spec.transitions] + [0.0]
        end = [*self.bounds[1:], self.n_frames / fps]
        # Visible span of each shot, including its share of dissolves/fades (camera time base).
        self.spans = [
            (b - half[k], e + half[k + 1])
            for k, (b, e) in enumerate(zip(self.bounds, end, strict=True))
        ]

    def shot_at(self, t: float) -> int:
        return int(np.searchsorted(self.bounds, t + 1e-9, side="right")) - 1

    def nearest_transition(self, t: float) -> tuple[int, Transition] | None:
        """Boundary index j (between shots j-1 and j) whose transition covers ``t``, if any."""
        for j, tr in enumerate(self.spec.transitions, start=1):
            if tr.kind != "cut" and abs(t - self.bounds[j]) <= tr.duration / 2 + 1e-9:
                return j, tr
        return None


def ground_truth(spec: ClipSpec, fps: float, name: str = "") -> dict[str, Any]:
    """The truth record for ``spec`` rendered at ``fps`` (no rendering needed)."""
    tl = _Timeline(spec, fps)
    transitions = [
        {"time": round(tl.bounds[j], 6), "kind": tr.kind, "duration": tr.duration}
        for j, tr in enumerate(spec.transitions, start=1)
    ]
    return {
        "video": name,
        "category": spec.category,
        "duration": round(tl.n_frames / fps, 6),
        "boundaries": [t["time"] for t in transitions],
        "fps": fps,
        "frames": tl.n_frames,
        "seed": spec.seed,
        "transitions": transitions,
        "photos": [s.photo for s in spec.shots],
    }


def iter_frames(spec: ClipSpec, width: int, height: int, fps: float) -> Iterator[np.ndarray]:
    """Yield every frame of the clip as an (height, width, 3) uint8 array."""
    tl = _Timeline(spec, fps)
    rng = np.random.default_rng(spec.seed)
    # Noise comes from random windows of a small bank: per-frame fresh-looking noise at a
    # fraction of the cost of drawing millions of normals per frame (matters at 720p).
    pad = 32
    bank = rng.standard_normal((4, height + pad, width + pad, 3), np.float32) * spec.noise_sigma
    bank = np.clip(bank, -127, 127).astype(np.int8)
    frng = np.random.default_rng(spec.seed + 7919)  # flicker draws, independent of size
    flash_left, flash_amount = 0, 0.0

    def shot_image(k: int, t: float) -> np.ndarray:
        shot = spec.shots[k]
        img = load_photo(shot.photo, tuple(shot.tint))
        a, b = tl.spans[k]
        view = shot.camera.at((t - a) / max(b - a, 1e-6))
        box = _crop_box(img, view, width / height)
        out = img.resize((width, height), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
        return np.asarray(out, dtype=np.float32)

    for i in range(tl.n_frames):
        t = i / fps
        k = tl.shot_at(t)
        gain, white = 1.0, 0.0
        hit = tl.nearest_transition(t)
        if hit and hit[1].kind == "dissolve":
            j, tr = hit
            alpha = (t - tl.bounds[j]) / tr.duration + 0.5
            frame = (1 - alpha) * shot_image(j - 1, t) + alpha * shot_image(j, t)
        else:
            frame = shot_image(k, t)
            if hit:  # fade: ramp down, hold black, ramp up; symmetric about the boundary
                j, tr = hit
                hold = FADE_HOLD * tr.duration
                ramp = (tr.duration - hold) / 2
                gain = min(max((abs(t - tl.bounds[j]) - hold / 2) / ramp, 0.0), 1.0)
        if spec.flicker is not None:
            fl = spec.flicker
            gain *= frng.uniform(fl.low, fl.high)
            if flash_left == 0 and frng.random() < fl.flashes_per_s / fps:
                flash_left = int(frng.integers(1, 4))
                flash_amount = frng.uniform(*fl.flash_strength)
            if flash_left:
                white, flash_left = flash_amount, flash_left - 1
        if gain != 1.0:
            frame *= gain
        if white:
            frame += white * (255.0 - frame)
        dy, dx = (int(v) for v in rng.integers(0, pad, 2))
        frame += bank[i % len(bank), dy : dy + height, dx : dx + width]
        yield np.clip(frame, 0, 255).astype(np.uint8)
