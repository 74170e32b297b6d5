"""Encoding clips to video files with ``ffmpeg`` (libx264), and the truth files beside them.

Frames are piped as raw RGB into ``ffmpeg``; its stderr is captured into the exception, never
printed. Long videos are one short clip repeated with the concat demuxer.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.errors import MediaError
from eventvstream.testdata.clips import cuts_of_length
from eventvstream.testdata.frames import ground_truth, iter_frames
from eventvstream.testdata.spec import ClipSpec, PathLike


class FFmpegNotFoundError(MediaError):
    """``ffmpeg`` is not on PATH; the generator cannot encode anything without it."""


def run_ffmpeg(args: list[str], stdin_frames: Iterator[np.ndarray] | None = None) -> None:
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
    run_ffmpeg([*args.split(), str(path)], iter_frames(spec, width, height, fps))
    truth = ground_truth(spec, fps, path.name)
    truth.update(width=width, height=height)
    if truth_path is not None:
        write_truth(truth, truth_path)
    return truth


def write_truth(truth: dict[str, Any], path: PathLike) -> None:
    Path(path).write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")


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
    spec = cuts_of_length(np.random.default_rng([seed, 720]), duration_s, seed)
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
    spec = replace(cuts_of_length(np.random.default_rng([seed, 3600]), seg_s, seed), crf=23)
    repeats = max(1, math.ceil(hours * 3600 / seg_s))
    with tempfile.TemporaryDirectory(dir=path.parent if path.parent.exists() else None) as tmp:
        seg = Path(tmp) / "segment.mp4"
        truth = render_clip(spec, seg, width, height, fps)
        listing = Path(tmp) / "list.txt"
        listing.write_text("file 'segment.mp4'\n" * repeats, encoding="utf-8")  # relative to list
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(path)])
    seg_truth = truth["boundaries"]
    bounds = [
        round(r * seg_s + t, 6) for r in range(repeats) for t in ([0.0] if r else []) + seg_truth
    ]
    truth.update(video=path.name, duration=repeats * seg_s, boundaries=bounds, transitions=[])
    truth.update(frames=truth["frames"] * repeats, repeats=repeats, segment_boundaries=seg_truth)
    if truth_path is not None:
        write_truth(truth, truth_path)
    return truth
