"""Synthetic test videos with known event boundaries, built from real photographs.

Why synthetic: a segmenter can only be scored against boundaries we know exactly, and the
few real clips with hand-checked cuts are too small a sample. Every clip here is made of real
photographs (the ones scikit-image ships, so nothing is downloaded), each shown with a slow
Ken-Burns drift and mild sensor noise so no shot is a frozen image. That matters: a detector that
fires on any pixel change would look perfect on still images and fail on real footage.

Two kinds of clip:

* transitions (``cuts``, ``dissolves``, ``fades``): several photos joined by a known
  transition; the truth is the cut frame, the dissolve midpoint or the middle of the black.
* distractors (``pan``, ``zoom``, ``flicker``, ``noise``): one photo for 20-30 s with strong
  camera motion, brightness flicker and flashes, or heavy noise; the truth is *no* boundary.

Times are seconds from the first frame (frame ``i`` is at ``i / fps``); boundaries are snapped to
the frame grid. Frames are drawn with numpy/PIL and piped as raw RGB into ``ffmpeg`` (libx264).
Everything is deterministic given the seed. Library code: nothing is printed; failures raise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from eventvstream.errors import MediaError

_RGB = (
    "astronaut chelsea coffee rocket immunohistochemistry hubble_deep_field retina colorwheel logo"
)
_GREY = "camera moon page text clock coins brick grass gravel cell"
RGB_PHOTOS, GREY_PHOTOS = tuple(_RGB.split()), tuple(_GREY.split())
PHOTOS = RGB_PHOTOS + GREY_PHOTOS
# Tints for greyscale photos, so two grey shots in a row still differ the way footage does.
TINTS = ((1, 1, 1), (1.08, 0.95, 0.78), (0.82, 0.93, 1.1), (0.9, 1.05, 0.85), (1.1, 0.88, 0.95))
TRANSITION_CATEGORIES = ("cuts", "dissolves", "fades")
DISTRACTOR_CATEGORIES = ("pan", "zoom", "flicker", "noise")
FADE_HOLD = 0.2  # fraction of a fade spent fully black
PathLike = str | os.PathLike[str]
Length = float | tuple[float, float]  # a fixed length in seconds, or a range to draw from


class FFmpegNotFoundError(MediaError):
    """``ffmpeg`` is not on PATH; the generator cannot encode anything without it."""

    code = "ffmpeg_missing"


@dataclass(frozen=True)
class View:
    """Where the virtual camera looks: centre (0..1 of the photo) and size (1 = widest crop)."""

    cx: float = 0.5
    cy: float = 0.5
    size: float = 0.9


@dataclass(frozen=True)
class Camera:
    """Keyframed views, evenly spaced over the shot; eased so the camera starts and stops softly."""

    views: tuple[View, ...] = (View(),)

    def at(self, u: float) -> View:
        if len(self.views) == 1:
            return self.views[0]
        pos = min(max(u, 0.0), 1.0) * (len(self.views) - 1)
        i = min(int(pos), len(self.views) - 2)
        f = pos - i
        f = f * f * (3 - 2 * f)  # smoothstep: no jerks at the keyframes
        a, b = (np.array([v.cx, v.cy, v.size]) for v in self.views[i : i + 2])
        return View(*(float(x) for x in a + (b - a) * f))


@dataclass(frozen=True)
class Shot:
    photo: str
    duration: float
    camera: Camera = Camera()
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Transition:
    """How a shot hands over to the next; ``duration`` is 0 for a cut."""

    kind: Literal["cut", "dissolve", "fade"] = "cut"
    duration: float = 0.0


@dataclass(frozen=True)
class Flicker:
    """Per-frame brightness gain drawn uniformly in [low, high], plus random white flashes."""

    low: float = 0.7
    high: float = 1.3
    flashes_per_s: float = 0.25
    flash_strength: tuple[float, float] = (0.5, 0.9)


@dataclass(frozen=True)
class ClipSpec:
    category: str
    shots: tuple[Shot, ...]
    transitions: tuple[Transition, ...] = ()
    seed: int = 0
    noise_sigma: float = 2.0  # in 0..255 units
    flicker: Flicker | None = None
    crf: int = 20

    def __post_init__(self) -> None:
        if not self.shots:
            raise ValueError("a clip needs at least one shot")
        if len(self.transitions) != len(self.shots) - 1:
            raise ValueError("need exactly one transition between consecutive shots")
        for i, tr in enumerate(self.transitions):
            room = min(self.shots[i].duration, self.shots[i + 1].duration)
            if tr.duration >= room:
                raise ValueError(f"transition {i} ({tr.duration}s) longer than its shots")

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.shots)


@lru_cache(maxsize=32)
def load_photo(name: str, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Image.Image:
    """A scikit-image sample photo as an RGB PIL image (greyscale promoted, alpha dropped)."""
    from skimage import data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    arr = np.asarray(getattr(data, name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    arr = arr[:, :, :3].astype(np.float32) * np.asarray(tint, np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


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


def _run_ffmpeg(args: list[str], stdin_frames: Iterator[np.ndarray] | None = None) -> None:
    """Run ffmpeg; its stderr is captured and put in the exception, never printed."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise FFmpegNotFoundError("ffmpeg not found on PATH; install it (apt-get install ffmpeg)")
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [exe, "-hide_banner", "-loglevel", "error", "-y", *args],
            stdin=subprocess.PIPE if stdin_frames is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            if proc.stdin is not None and stdin_frames is not None:
                with proc.stdin, contextlib.suppress(BrokenPipeError):  # dead ffmpeg: see below
                    for frame in stdin_frames:
                        proc.stdin.write(frame.tobytes())
            rc = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted, or a frame generator raised
                proc.kill()
                proc.wait()
        if rc != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise MediaError(f"ffmpeg failed (exit {rc}): {tail.strip()}")


def render_clip(
    spec: ClipSpec,
    path: PathLike,
    width: int = 640,
    height: int = 360,
    fps: float = 25.0,
    truth_path: PathLike | None = None,
) -> dict[str, Any]:
    """Encode ``spec`` to ``path`` (H.264, yuv420p) and return its ground truth.

    The truth is also written as JSON to ``truth_path`` when given.
    """
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError("width and height must be even and at least 16 (yuv420p)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = f"-f rawvideo -pix_fmt rgb24 -s {width}x{height} -r {fps} -i - -an -c:v libx264"
    args += f" -preset veryfast -crf {spec.crf} -pix_fmt yuv420p"
    _run_ffmpeg([*args.split(), str(path)], iter_frames(spec, width, height, fps))
    truth = ground_truth(spec, fps, path.name)
    truth.update(width=width, height=height)
    if truth_path is not None:
        write_truth(truth, truth_path)
    return truth


def write_truth(truth: dict[str, Any], path: PathLike) -> None:
    Path(path).write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")


# --- canned builders -------------------------------------------------------------------------


def _ken_burns(rng: np.random.Generator, drift: float = 0.04) -> Camera:
    """A slow push-in/pull-out with a sideways drift of a few percent over the shot."""
    s0 = rng.uniform(0.75, 0.92)
    cx, cy = rng.uniform(0.42, 0.58, 2)
    dx, dy = rng.uniform(-drift, drift, 2)
    s1 = s0 * rng.uniform(1 - 1.5 * drift, 1 + 1.5 * drift)
    return Camera((View(cx, cy, s0), View(cx + dx, cy + dy, min(s1, 1.0))))


def _pick_shots(rng: np.random.Generator, n: int, shot_s: tuple[float, float]) -> list[Shot]:
    photos = rng.choice(PHOTOS, size=n, replace=n > len(PHOTOS))
    shots = []
    for name in photos:
        tint = TINTS[int(rng.integers(len(TINTS)))] if name in GREY_PHOTOS else (1.0, 1.0, 1.0)
        shots.append(Shot(str(name), float(rng.uniform(*shot_s)), _ken_burns(rng), tint))
    return shots


def _transition_clip(
    category: str,
    kind: Literal["cut", "dissolve", "fade"],
    seed: int,
    length: Length,
    n_shots: int | None = None,
    shot_s: tuple[float, float] = (3.0, 6.0),
) -> ClipSpec:
    rng = np.random.default_rng([seed, TRANSITION_CATEGORIES.index(category)])
    n = int(n_shots if n_shots is not None else rng.integers(5, 8))
    shots = _pick_shots(rng, n, shot_s)
    lens = [
        float(rng.uniform(*length)) if isinstance(length, tuple) else float(length)
        for _ in range(n - 1)
    ]
    return ClipSpec(category, tuple(shots), tuple(Transition(kind, d) for d in lens), seed)


def cuts_clip(seed: int, **kw: Any) -> ClipSpec:
    """5-7 photos (3-6 s each) joined by hard cuts; truth = first frame of each new shot.

    Like the other transition builders it takes ``n_shots`` and ``shot_s`` (a range in s).
    """
    return _transition_clip("cuts", "cut", seed, length=0.0, **kw)


def dissolves_clip(seed: int, *, dissolve_s: Length = 1.0, **kw: Any) -> ClipSpec:
    """Cross-dissolves (fixed length, or drawn per transition from a range); truth = midpoint."""
    return _transition_clip("dissolves", "dissolve", seed, length=dissolve_s, **kw)


def fades_clip(seed: int, *, fade_s: Length = 1.0, **kw: Any) -> ClipSpec:
    """Fade to black and back in (20% of it fully black); truth = middle of the black."""
    return _transition_clip("fades", "fade", seed, length=fade_s, **kw)


def _one_shot(
    category: str, seed: int, photos: tuple[str, ...], duration_s: float | None, camera, **kw: Any
) -> ClipSpec:
    rng = np.random.default_rng([seed, 100 + DISTRACTOR_CATEGORIES.index(category)])
    photo = str(rng.choice(photos))
    dur = float(duration_s if duration_s is not None else rng.uniform(20.0, 30.0))
    return ClipSpec(category, (Shot(photo, dur, camera(rng)),), seed=seed, **kw)


def pan_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """A slow-to-moderate pan over a narrow window of one big photo, changing direction."""

    def camera(rng: np.random.Generator) -> Camera:
        size = rng.uniform(0.4, 0.55)
        xs = [0.15, 0.85, 0.35, 0.8] if rng.random() < 0.5 else [0.85, 0.15, 0.65, 0.2]
        ys = rng.uniform(0.25, 0.75, len(xs))
        return Camera(tuple(View(x, float(y), size) for x, y in zip(xs, ys, strict=True)))

    return _one_shot("pan", seed, ("hubble_deep_field", "retina", "astronaut"), duration_s, camera)


def zoom_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """Zoom in to ~2.5x and back out, twice, on one photo."""

    def camera(rng: np.random.Generator) -> Camera:
        cx, cy = rng.uniform(0.35, 0.65, 2)
        sizes = (1.0, rng.uniform(0.35, 0.45), 0.9, rng.uniform(0.4, 0.5), 1.0)
        return Camera(tuple(View(cx, cy, float(s)) for s in sizes))

    photos = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina")
    return _one_shot("zoom", seed, photos, duration_s, camera)


def flicker_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """One photo, gentle drift, per-frame gain 0.7-1.3 and a white flash every ~4 s.

    Dark photos (hubble_deep_field) are left out: a gain on near-black pixels changes little.
    """
    photos = tuple(p for p in RGB_PHOTOS if p != "hubble_deep_field")
    drift = lambda r: _ken_burns(r, 0.08)  # noqa: E731
    return _one_shot("flicker", seed, photos, duration_s, drift, flicker=Flicker())


def noise_clip(seed: int, *, duration_s: float | None = None) -> ClipSpec:
    """One photo under heavy sensor noise (sigma 15-25 of 255), compressed at crf 23.

    Not harder: at crf 28 x264 quantises most of the noise away (frame-to-frame difference
    drops from ~24 to ~5 grey levels) and the clip stops being a noise test.
    """
    sigma = float(np.random.default_rng([seed, 999]).uniform(15.0, 25.0))
    drift = lambda r: _ken_burns(r, 0.08)  # noqa: E731
    return _one_shot("noise", seed, RGB_PHOTOS, duration_s, drift, noise_sigma=sigma, crf=23)


BUILDERS = {
    "cuts": cuts_clip,
    "dissolves": dissolves_clip,
    "fades": fades_clip,
    "pan": pan_clip,
    "zoom": zoom_clip,
    "flicker": flicker_clip,
    "noise": noise_clip,
}


def _cuts_of_length(rng: np.random.Generator, total_s: float, seed: int) -> ClipSpec:
    """Hard cuts of ~3-6 s shots stretched to exactly ``total_s``; first and last photo differ."""
    while True:
        shots = _pick_shots(rng, max(2, round(total_s / 4.5)), (3.0, 6.0))
        if shots[0].photo != shots[-1].photo:
            break
    scale = total_s / sum(s.duration for s in shots)
    shots = [replace(s, duration=s.duration * scale) for s in shots]
    return ClipSpec("cuts", tuple(shots), (Transition(),) * (len(shots) - 1), seed)


def make_throughput_clip(
    path: PathLike,
    seed: int = 0,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    duration_s: float = 60.0,
    truth_path: PathLike | None = None,
) -> dict[str, Any]:
    """A ~60 s cuts clip at 720p30, for measuring end-to-end throughput."""
    spec = _cuts_of_length(np.random.default_rng([seed, 720]), duration_s, seed)
    return render_clip(spec, path, width, height, fps, truth_path)


def make_long_video(
    path: PathLike,
    hours: float = 2.0,
    width: int = 640,
    height: int = 360,
    fps: float = 10.0,
    seed: int = 0,
    truth_path: PathLike | None = None,
) -> dict[str, Any]:
    """A long cuts video made cheaply: one 60 s clip, repeated with ffmpeg's concat demuxer.

    Encoding two hours frame by frame would take about as long as watching it; concatenating a
    60 s segment with ``-c copy`` takes seconds. The loop's last photo differs from its first,
    so every join is a real cut and appears in the truth.
    """
    path = Path(path).resolve()
    seg_s = 60.0
    spec = replace(_cuts_of_length(np.random.default_rng([seed, 3600]), seg_s, seed), crf=23)
    repeats = max(1, math.ceil(hours * 3600 / seg_s))
    with tempfile.TemporaryDirectory(dir=path.parent if path.parent.exists() else None) as tmp:
        seg = Path(tmp) / "segment.mp4"
        truth = render_clip(spec, seg, width, height, fps)
        listing = Path(tmp) / "list.txt"
        listing.write_text("file 'segment.mp4'\n" * repeats, encoding="utf-8")  # relative to list
        _run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(path)])
    seg_truth = truth["boundaries"]
    bounds = [
        round(r * seg_s + t, 6) for r in range(repeats) for t in ([0.0] if r else []) + seg_truth
    ]
    truth.update(video=path.name, duration=repeats * seg_s, boundaries=bounds, transitions=[])
    truth.update(frames=truth["frames"] * repeats, repeats=repeats, segment_boundaries=seg_truth)
    if truth_path is not None:
        write_truth(truth, truth_path)
    return truth
