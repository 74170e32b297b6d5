#!/usr/bin/env python
"""Live RTSP sources held for a while: lag, how far decoding runs behind, drops, memory.

Starts GStreamer's RTSP server (``tests/integration/servers/rtsp_server.py``, run by Debian's
``/usr/bin/python3``; one shared H.264 stream, like a camera with several viewers), then runs
``--sources`` live sessions side by side in this process, each ``LiveSource`` -> ``Segmenter``
(the profile's encoder, one instance shared by all, as the server shares it; torch
inference is thread-safe) for ``--seconds``:

- lag p95: frame arrival (decoded) -> handed to the segmenter;
- behind p95: how far decoding runs behind the source's own clock (grows if we cannot keep up);
- frames dropped by the bounded ring, events, and the process RSS over time (flat = no leak).

Usage::

    python scripts/bench_live.py --sources 1 --seconds 120      # held: RSS flat?
    python scripts/bench_live.py --sources 8 --seconds 60       # 8 cameras on this machine
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from eventvstream.config import load_settings
from eventvstream.media.live import LiveSource
from eventvstream.pipeline import Segmenter

SERVER = Path(__file__).resolve().parents[1] / "tests" / "integration" / "servers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=2.0, help="sampling rate per source")
    ap.add_argument("--camera-fps", type=int, default=10)
    ap.add_argument("--config", default="default", help="profile (default: the CPU default)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    port = free_port()
    cmd = ["/usr/bin/python3", str(SERVER / "rtsp_server.py"), str(port)]
    server = subprocess.Popen([*cmd, "--fps", str(args.camera_fps)], stdout=subprocess.PIPE)
    assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
    url = f"rtsp://127.0.0.1:{port}/cam"
    settings = load_settings(args.config)
    settings = settings.model_copy(
        update={"sampling": settings.sampling.model_copy(update={"fps": args.fps})}
    )
    first = Segmenter(settings)
    segmenters = [first] + [
        Segmenter(settings, encoder=first.encoder) for _ in range(args.sources - 1)
    ]
    sources = [LiveSource(url, fps=args.fps, until_s=args.seconds) for _ in segmenters]
    events = [0] * len(sources)

    def run(i: int) -> None:
        for _ in segmenters[i].segment(sources[i]):
            events[i] += 1

    proc = psutil.Process()
    rss: list[tuple[float, float]] = []
    t0 = time.time()
    cpu0 = proc.cpu_times()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(sources))]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss.append((round(time.time() - t0, 1), round(proc.memory_info().rss / 2**20, 1)))
        time.sleep(5.0)
    wall = time.time() - t0
    cpu1 = proc.cpu_times()
    server.kill()
    statuses = [s.status() for s in sources]
    lag = max(s["lag_p95_s"] or 0 for s in statuses)
    behind = max(s["behind_p95_s"] or 0 for s in statuses)
    after_warmup = [m for t, m in rss if t >= min(20.0, args.seconds / 3)]
    result = {
        "sources": args.sources,
        "seconds": args.seconds,
        "fps": args.fps,
        "camera": f"320x240 H.264 @ {args.camera_fps} fps (GStreamer RTSP, TCP)",
        "profile": args.config,
        "wall_s": round(wall, 1),
        "cpu_percent_of_one_core": round(
            100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall, 1
        ),
        "max_lag_p95_s": lag,
        "max_behind_p95_s": behind,
        "frames_delivered": [s["frames_delivered"] for s in statuses],
        "frames_dropped": [s["frames_dropped"] for s in statuses],
        "events": events,
        "reconnects": sum(s["reconnects"] for s in statuses),
        "rss_mib": rss,
        "rss_growth_after_warmup_mib": round(after_warmup[-1] - after_warmup[0], 1)
        if len(after_warmup) > 1
        else None,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
