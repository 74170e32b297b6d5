"""PyAV (FFmpeg) reader for the decode worker: reads whatever FFmpeg reads.

Runs inside the child process of :mod:`eventvstream.media._decode_worker`; it yields the worker's
messages instead of sending them, so it can be driven (and tested) without a pipe.

Why one sequential pass and no index: a long-GOP stream must be decoded frame by frame to reach
any sampled frame anyway, so the only cost of a pass is converting the frames we keep. Indexing
first (what decord does) needs trustworthy packet timestamps and frame counts, which is exactly what
broken containers lack (Theora in Ogg, MPEG-4 Part 2 in AVI). So:

- frames are sampled on their **decoded presentation times** (:class:`StreamSampler`), which makes
  variable frame rate exact, and a timestamp that is missing or goes backwards is replaced by the
  previous one plus a nominal frame period;
- the ``info`` sent first has the real picture size (from the first decoded frame) but only the
  container's *estimates* of duration and frame count; the ``done`` message carries the measured
  values (duration = last frame time + its duration as the container gives it, else one
  nominal period: the duration ffprobe reports);
- frames are scaled by swscale straight to the output size and RGB, honouring the frame's colour
  range and matrix (full-range and 10-bit sources), then turned upright from the display matrix
  (phone videos) and widened to square pixels (anamorphic MPEG-2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from eventvstream.media.frames import rgb_converter
from eventvstream.media.images import scaled_size
from eventvstream.media.sampling import StreamSampler

Message = tuple[Any, ...]


class Unreadable(Exception):
    """The file has no decodable video: reported as ``unreadable_video``."""


def rotation_turns(frame: Any) -> int:
    """Clockwise quarter turns (0-3) that make ``frame`` upright, from its display matrix.

    FFmpeg's own rule (fftools ``get_rotation``): theta = -rotation, rounded to 90 degrees.
    """
    try:
        ccw = float(frame.rotation)
    except (AttributeError, TypeError, ValueError):
        return 0
    if not math.isfinite(ccw):
        return 0
    return round(-ccw / 90.0) % 4


def display_size(frame: Any, stream: Any, turns: int) -> tuple[int, int]:
    """Width and height as shown: square pixels (sample aspect ratio applied), then rotated."""
    width, height = int(frame.width), int(frame.height)
    sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
    if sar is not None and sar.numerator > 0 and sar.denominator > 0 and sar != 1:
        width = max(1, round(width * sar.numerator / sar.denominator))
    return (height, width) if turns % 2 else (width, height)


def _open(path: str, threads: int) -> tuple[Any, Any]:
    import av

    av.logging.set_level(av.logging.PANIC)  # no decoder chatter on the worker's stderr
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise Unreadable(_ffmpeg_message(exc)) from None
    videos = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)  # cover art is not video
    ]
    if not videos:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise Unreadable(f"no video stream in the file (streams: {', '.join(kinds)})")
    stream = videos[0]
    stream.thread_type = "AUTO"  # frame + slice threads, as the ffmpeg CLI does
    stream.codec_context.thread_count = max(1, threads)
    return container, stream


def _ffmpeg_message(exc: Exception) -> str:
    """``[Errno 1094995529] Invalid data found when processing input: 'x.mp4'`` -> the middle."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip()[:300]


def _frames(container: Any, stream: Any, damaged: list[int]) -> Iterator[tuple[Any, Any]]:
    """``(time in s or None, frame)`` in presentation order.

    An empty packet inside the stream means "the previous picture again" (Theora in Ogg, AVI
    drop frames): it is yielded as the previous frame at the packet's time, and never sent to the
    decoder, which would take it for the end-of-stream flush. A packet the decoder rejects is
    skipped and counted in ``damaged[0]`` (FFmpeg's own tools conceal and go on too); a demuxer
    error is raised: the container is unreadable from there on.
    """
    import av

    previous = None
    for packet in container.demux(stream):
        if packet.size == 0 and (packet.pts is not None or packet.dts is not None):
            if previous is not None and packet.pts is not None:
                yield float(packet.pts * packet.time_base), previous
            continue
        try:
            decoded = packet.decode()  # the flush packet at the end drains the decoder
        except (av.error.InvalidDataError, av.error.UndefinedError, av.error.BugError):
            damaged[0] += 1
            continue
        for frame in decoded:
            previous = frame
            yield frame.time, frame


def _span(frame: Any) -> float:
    """How long ``frame`` is shown (s), from its packet duration; 0 when unknown."""
    try:
        return float(frame.duration * frame.time_base) if frame.duration else 0.0
    except (AttributeError, TypeError):
        return 0.0


def _estimates(container: Any, stream: Any) -> tuple[float, float, int]:
    """Nominal fps, duration (s) and frame count the container claims; 0 when it does not."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    frames = int(stream.frames or 0) or (round(duration * fps) if fps > 0 else 0)
    return fps, max(0.0, duration), frames


def decode(
    path: str, fps: float, short_side: int, chunk_frames: int, threads: int
) -> Iterator[Message]:
    """Yield ``info``, ``chunk``… and ``done`` messages for ``path``.

    Raises :class:`Unreadable` before the ``info`` message when there is no video to read; other
    exceptions after it are decode errors (the worker reports them as ``corrupt_video``).
    """
    import av

    container, stream = _open(path, threads)
    with container:
        native_fps, est_duration, est_frames = _estimates(container, stream)
        period = 1.0 / native_fps if native_fps > 0 else 1.0 / 25.0
        damaged = [0]
        frames = _frames(container, stream, damaged)
        try:
            first_time, first = next(frames, (None, None))
        except av.error.FFmpegError as exc:  # e.g. no decoder for this codec
            raise Unreadable(_ffmpeg_message(exc)) from None
        if first is None:
            raise Unreadable("the video stream has no decodable frames")
        turns = rotation_turns(first)
        width, height = display_size(first, stream, turns)
        out_w, out_h = scaled_size(width, height, short_side)
        # swscale works on the stored picture: scale to the rotated-back size, then turn.
        scale_w, scale_h = (out_h, out_w) if turns % 2 else (out_w, out_h)
        origin = float(first_time) if first_time is not None else 0.0
        info = {
            "path": path,
            "frames": est_frames,
            "native_fps": native_fps,
            "width": width,
            "height": height,
            "out_width": out_w,
            "out_height": out_h,
            "duration": est_duration,
            "sampled_frames": max(1, math.floor(est_duration * fps) + 1),
            "start_offset": float(origin),
            "damaged_packets": 0,
        }
        yield ("info", dict(info))

        rgb = rgb_converter(scale_w, scale_h, turns)
        sampler = StreamSampler(fps)
        times: list[float] = []
        indices: list[int] = []
        images: list[np.ndarray] = []
        last_t = -math.inf
        last_span = 0.0  # how long the last frame is shown, from the container
        index = 0
        raw, frame = first_time, first
        pending: tuple[float, int, Any] | None = None  # the newest frame, kept for the tail
        while frame is not None:
            t = float(raw) - origin if raw is not None else math.nan
            if not math.isfinite(t) or t <= last_t:
                t = (last_t + period) if math.isfinite(last_t) else 0.0
            last_span = _span(frame)
            last_t = t
            if sampler.take(t):
                times.append(t)
                indices.append(index)
                images.append(rgb(frame))
                pending = None
                if len(times) >= chunk_frames:
                    yield ("chunk", np.array(times), np.array(indices, np.int64), np.stack(images))
                    times, indices, images = [], [], []
            else:
                pending = (t, index, frame)
            index += 1
            raw, frame = next(frames, (None, None))
        if pending is not None and sampler.take_last(pending[0]):
            times.append(pending[0])
            indices.append(pending[1])
            images.append(rgb(pending[2]))
        if times:
            yield ("chunk", np.array(times), np.array(indices, np.int64), np.stack(images))
        measured_fps = (index - 1) / last_t if index > 1 and last_t > 0 else native_fps
        info.update(
            frames=index,
            native_fps=native_fps or measured_fps,
            duration=last_t + (last_span if last_span > 0 else period),
            sampled_frames=sampler.taken,
            damaged_packets=damaged[0],
        )
        yield ("done", info)
