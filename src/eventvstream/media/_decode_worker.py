"""The child-process side of :mod:`eventvstream.media.video`.

decord is known to segfault on some corrupt streams. Running it here, in a separate process that
talks over a pipe, means a crash kills only this process: the parent sees EOF and reports a clear
error instead of dying. Keep this module's imports minimal (decord and numpy) so spawning is fast.

Run as ``python -m eventvstream.media._decode_worker PATH FPS SHORT_SIDE CHUNK THREADS``: a plain
subprocess (not multiprocessing) so it works whatever the parent's ``__main__`` is (stdin,
notebooks, frozen apps). Messages go over the original stdout; fd 1 is pointed at stderr so a
stray print from a library cannot corrupt the stream.

Messages sent to the parent (pickled tuples):
  ("info", dict)                         once, after the file opened
  ("chunk", times, indices, images)      sampled frames, images N x H x W x 3 uint8
  ("error", code, message)               a decode error the worker caught
  ("done",)                              end of stream
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from multiprocessing.connection import Connection
from typing import Any


def run(
    conn: Connection, path: str, fps: float, short_side: int, chunk_frames: int, threads: int
) -> None:
    """Decode ``path`` at ``fps`` and stream chunks to ``conn``; never raises."""
    try:
        _decode(conn, path, fps, short_side, chunk_frames, threads)
    except BrokenPipeError:  # the parent stopped listening (early exit): nothing to report
        pass
    except Exception as exc:  # report, don't crash: the parent turns this into MediaError
        with contextlib.suppress(BrokenPipeError, OSError):
            conn.send(("error", "corrupt_video", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _decode(
    conn: Connection, path: str, fps: float, short_side: int, chunk_frames: int, threads: int
) -> None:
    import decord
    import numpy as np

    from eventvstream.media.images import scaled_size
    from eventvstream.media.sampling import sample_indices

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
        conn.send(("error", "unreadable_video", _clean(exc)))
        return
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
    conn.send(
        (
            "info",
            {
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
            },
        )
    )
    for start in range(0, len(indices), chunk_frames):
        chunk = indices[start : start + chunk_frames]
        try:
            images = reader.get_batch(chunk.tolist()).asnumpy()
        except Exception as exc:
            done_until = float(pts_rel[chunk[0]])
            conn.send(
                ("error", "corrupt_video", f"decoding failed near {done_until:.2f}s: {_clean(exc)}")
            )
            return
        conn.send(("chunk", pts_rel[chunk], chunk, images))
    conn.send(("done",))


def _clean(exc: Any) -> str:
    """decord errors carry C++ stack traces and ``[time] file.cc:123:`` prefixes; keep the
    first line's message."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", lines[0])
    return text.strip()[:300]


def main(argv: list[str]) -> int:
    path, fps, short_side = argv[0], float(argv[1]), int(argv[2])
    chunk, threads = int(argv[3]), int(argv[4])
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run(Connection(out_fd, readable=False), path, fps, short_side, chunk, threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
