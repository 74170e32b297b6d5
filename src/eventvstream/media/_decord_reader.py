"""decord reader for the decode worker: the original reader, kept as a measured alternative.

decord indexes the whole file first (every packet's timestamp), then seeks and decodes batches of
the sampled frames. Its bundled FFmpeg is from 2021: no AV1, and it fails on containers whose
index or timestamps are broken (Theora in Ogg, MPEG-4 Part 2 in AVI). The PyAV reader
(``_pyav_reader``) is the default; this one stays selectable (``sampling.reader: decord``) so
the two can be compared side by side (``scripts/bench_decode.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from eventvstream.media.images import scaled_size
from eventvstream.media.sampling import sample_indices

Message = tuple[Any, ...]


class Unreadable(Exception):
    """decord could not open or index the file: reported as ``unreadable_video``."""


def decode(
    path: str, fps: float, short_side: int, chunk_frames: int, threads: int
) -> Iterator[Message]:
    """Yield ``info``, ``chunk``… and ``done`` messages for ``path`` (see the worker)."""
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    try:
        probe = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        n_frames = len(probe)
        if n_frames == 0:
            raise RuntimeError("no video frames")
        first = probe[0].shape
        native_fps = float(probe.get_avg_fps())
        del probe
    except Exception as exc:
        raise Unreadable(clean(exc)) from None
    height, width = int(first[0]), int(first[1])
    out_w, out_h = scaled_size(width, height, short_side)
    reader = decord.VideoReader(
        path, ctx=decord.cpu(0), width=out_w, height=out_h, num_threads=threads
    )
    pts_all = reader.get_frame_timestamp(np.arange(n_frames))[:, 0].astype(np.float64)
    valid = np.isfinite(pts_all)
    pts_all = np.where(valid, pts_all, np.nan)
    order_ok = np.all(np.diff(pts_all[valid]) >= 0)
    if not order_ok or not valid.all():
        # Broken timestamps: fall back to the nominal frame clock rather than refuse the file.
        pts_all = np.arange(n_frames) / (native_fps if native_fps > 0 else 25.0)
    origin = float(pts_all[0])
    pts_rel = pts_all - origin
    indices = sample_indices(pts_rel, fps)
    duration = float(pts_rel[-1] + (1.0 / native_fps if native_fps > 0 else 0.0))
    info = {
        "path": path,
        "frames": n_frames,
        "native_fps": native_fps,
        "width": width,
        "height": height,
        "out_width": out_w,
        "out_height": out_h,
        "duration": duration,
        "sampled_frames": len(indices),
        "start_offset": origin,
    }
    yield ("info", info)
    for start in range(0, len(indices), chunk_frames):
        chunk = indices[start : start + chunk_frames]
        images = reader.get_batch(chunk.tolist()).asnumpy()  # errors: reported by the worker
        yield ("chunk", pts_rel[chunk], chunk, images)
    yield ("done", info)


def clean(exc: Any) -> str:
    """decord errors carry C++ stack traces and ``[time] file.cc:123:`` prefixes; keep the
    first line's message."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", lines[0])
    return text.strip()[:300]
