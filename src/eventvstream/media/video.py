"""Video files -> sampled frames with exact timestamps, streamed in chunks.

Design:
- read with **PyAV** (current FFmpeg: AV1, HEVC 10-bit, Theora, MPEG-4 Part 2 in AVI…; see
  ``_pyav_reader``), or decord on request (``reader="decord"``, the measured alternative);
- decode in a **child process** (see ``_decode_worker``), because decoders can segfault on corrupt
  input; the parent turns a crash, an error or a stall into a :class:`MediaError`, and keeps
  running;
- **stream** chunks of ``chunk_frames`` sampled frames, so a 2-hour file is never held in memory;
- a reader thread drains the pipe into a small bounded queue, so the child decodes the next
  chunk while the caller encodes this one (decode and perception overlap on two cores);
- frames are **resized at decode time** (FFmpeg's scaler, in the child) to ``short_side``, which
  is all perception needs and keeps the pipe traffic small.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.errors import DecoderCrashed, DecodeTimeout, MediaError
from eventvstream.media._decode_worker import READERS


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder learned about the file.

    ``width``/``height`` are as displayed (rotation and pixel aspect applied). With the PyAV
    reader, ``frames``, ``duration`` and ``sampled_frames`` are the container's estimates until
    the stream has been read to its end; then :attr:`VideoStream.info` holds the measured values
    (``duration``: last frame time + one frame period). ``damaged_packets``: packets the decoder
    rejected and skipped.
    """

    path: str
    frames: int
    native_fps: float
    width: int
    height: int
    out_width: int
    out_height: int
    duration: float
    sampled_frames: int
    start_offset: float
    damaged_packets: int = 0
    #: live sources: the Unix time of t = 0 (times are seconds from it); None for files
    wall_start: float | None = None


@dataclass(frozen=True)
class FrameChunk:
    """Consecutive sampled frames: ``times[i]`` (s from the first frame) for ``images[i]``."""

    times: np.ndarray
    indices: np.ndarray
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


_END = object()


class VideoStream:
    """An open video being decoded in an isolated process. Use as a context manager.

    >>> with open_video("clip.mp4", fps=2.0) as video:   # doctest: +SKIP
    ...     print(video.info.duration)
    ...     for chunk in video:
    ...         ...
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float = 2.0,
        short_side: int = 224,
        chunk_frames: int = 16,
        timeout_s: float = 60.0,
        prefetch_frames: int = 32,
        threads: int = 2,
        reader: str = "pyav",
    ) -> None:
        self.path = Path(path)
        if reader not in READERS:
            raise ValueError(f"unknown video reader {reader!r}; expected one of {READERS}")
        if not self.path.exists():
            raise MediaError(f"video not found: {self.path}", code="not_found")
        if not self.path.is_file():
            raise MediaError(f"not a file: {self.path}", code="not_found")
        if self.path.stat().st_size == 0:
            raise MediaError(f"empty file: {self.path}", code="unreadable_video")
        self.timeout_s = timeout_s
        # A fresh interpreter, not fork: never fork a process that holds torch threads.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the stream
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventvstream.media._decode_worker",
                str(self.path),
                str(fps),
                str(short_side),
                str(chunk_frames),
                str(threads),
                reader,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self._proc.stdout is not None
        # Our own fd: the child's exit then gives EOF here, not a hang.
        self._conn = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
        self._proc.stdout.close()
        # The decoder may run this many sampled frames ahead, whatever the chunk size.
        ahead = max(1, -(-prefetch_frames // max(1, chunk_frames)))
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True, name="evs-decoder-pipe")
        self._reader.start()
        self.info = self._expect_info()

    # -- reading -------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Move messages from the pipe to the queue; turn EOF into a crash report."""
        try:
            while not self._stop.is_set():
                if not self._conn.poll(0.2):
                    continue
                message = self._conn.recv()
                self._put(message)
                if message[0] in ("done", "error"):
                    return
        except (EOFError, OSError):
            try:
                code = self._proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                code = None
            detail = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            self._put(("crash", detail + self._stderr_tail()))

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return f": {lines[-1][:200]}" if lines else ""

    def _put(self, message: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.2)
                return
            except queue.Full:
                continue

    def _next_message(self) -> Any:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return self._queue.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() > deadline:
                    self.close()
                    raise DecodeTimeout(
                        f"decoder made no progress for {self.timeout_s:.0f}s on {self.path}"
                    ) from None

    def _raise_for(self, message: Any) -> None:
        kind = message[0]
        if kind == "error":
            self.close()
            raise MediaError(f"{self.path.name}: {message[2]}", code=message[1])
        if kind == "crash":
            self.close()
            raise DecoderCrashed(
                f"{self.path.name}: the video decoder crashed ({message[1]}); the file is "
                "probably corrupt or uses an unsupported codec"
            )

    def _expect_info(self) -> VideoInfo:
        message = self._next_message()
        self._raise_for(message)
        if message[0] != "info":
            self.close()
            raise MediaError(f"{self.path.name}: decoder sent no stream info", code="corrupt_video")
        return VideoInfo(**message[1])

    def __iter__(self) -> Iterator[FrameChunk]:
        try:
            while True:
                message = self._next_message()
                self._raise_for(message)
                if message[0] == "done":
                    if len(message) > 1:  # the measured values replace the header's estimates
                        self.info = VideoInfo(**message[1])
                    return
                _, times, indices, images = message
                yield FrameChunk(times=times, indices=indices, images=images)
        finally:
            self.close()

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the decoder process and the reader thread; safe to call twice."""
        self._stop.set()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - terminate is normally enough
                self._proc.kill()
                self._proc.wait(timeout=2.0)
        self._reader.join(timeout=1.0)
        self._conn.close()
        self._stderr.close()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(
    path: str | Path,
    *,
    fps: float = 2.0,
    short_side: int = 224,
    chunk_frames: int = 16,
    timeout_s: float = 60.0,
    threads: int = 2,
    reader: str = "pyav",
) -> VideoStream:
    """Open a video for sampled, chunked decoding. Raises :class:`MediaError` if unreadable.

    ``threads`` are FFmpeg's decoding threads in the worker process; ``reader`` is ``"pyav"``
    or ``"decord"``.
    """
    return VideoStream(
        path,
        fps=fps,
        short_side=short_side,
        chunk_frames=chunk_frames,
        timeout_s=timeout_s,
        threads=threads,
        reader=reader,
    )
