"""The child-process side of :mod:`eventvstream.media.video`.

Decoders crash: decord is known to segfault on some corrupt streams, and any FFmpeg decoder may
hit a bug on hostile input. Running the reader here, in a separate process that talks over a pipe,
means a crash kills only this process: the parent sees EOF and reports a clear error instead of
dying. Keep this module's imports minimal so spawning is fast.

Run as ``python -m eventvstream.media._decode_worker PATH FPS SHORT_SIDE CHUNK THREADS [READER]``
(READER: ``pyav`` (default) or ``decord``): a plain subprocess (not multiprocessing) so it works
whatever the parent's ``__main__`` is (stdin, notebooks, frozen apps). Messages go over the
original stdout; fd 1 is pointed at stderr so a stray print from a library cannot corrupt the
stream.

Messages sent to the parent (pickled tuples):
  ("info", dict)                         once, after the file opened
  ("chunk", times, indices, images)      sampled frames, images N x H x W x 3 uint8
  ("error", code, message)               a decode error the worker caught
  ("done", dict)                         end of stream, with the measured info
"""

from __future__ import annotations

import contextlib
import os
import sys
from multiprocessing.connection import Connection

READERS = ("pyav", "decord")


def run(
    conn: Connection,
    path: str,
    fps: float,
    short_side: int,
    chunk_frames: int,
    threads: int,
    reader: str = "pyav",
) -> None:
    """Decode ``path`` at ``fps`` and stream chunks to ``conn``; never raises."""
    if reader == "decord":
        from eventvstream.media import _decord_reader as module
    else:
        from eventvstream.media import _pyav_reader as module  # type: ignore[no-redef]
    started = False
    done_until = 0.0
    try:
        for message in module.decode(path, fps, short_side, chunk_frames, threads):
            conn.send(message)
            started = True
            if message[0] == "chunk" and len(message[1]):
                done_until = float(message[1][-1])
    except BrokenPipeError:  # the parent stopped listening (early exit): nothing to report
        pass
    except module.Unreadable as exc:
        _report(conn, "unreadable_video", str(exc))
    except Exception as exc:  # report, don't crash: the parent turns this into MediaError
        text = _clean(exc)
        if started:
            where = f" after {done_until:.2f}s" if done_until > 0 else ""
            text = f"decoding failed{where}: {text}"
        _report(conn, "corrupt_video" if started else "unreadable_video", text)
    finally:
        conn.close()


def _report(conn: Connection, code: str, message: str) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        conn.send(("error", code, message))


def _clean(exc: BaseException) -> str:
    from eventvstream.media._decord_reader import clean

    return f"{type(exc).__name__}: {clean(exc)}"


def main(argv: list[str]) -> int:
    path, fps, short_side = argv[0], float(argv[1]), int(argv[2])
    chunk, threads = int(argv[3]), int(argv[4])
    reader = argv[5] if len(argv) > 5 else "pyav"
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run(Connection(out_fd, readable=False), path, fps, short_side, chunk, threads, reader)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
