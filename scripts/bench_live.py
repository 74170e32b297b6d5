#!/usr/bin/env python
"""Live RTSP cameras pulled by a real ``evs serve``: lag, dropped frames, memory.

Starts GStreamer's RTSP server (``tests/integration/servers/rtsp_server.py``, run by Debian's
``/usr/bin/python3``; one shared H.264 stream, like a camera with several viewers) and one
``evs serve`` process (the profile given, default: the CPU default profile with its packaged
encoder and decoder; captions on). Then, for each phase (``--phases 1,8``: first one camera,
then eight, on the same server), it starts that many pulls with ``POST /v1/streams
{"source": {"url": "rtsp://…", "fps": 2}}`` — every camera through the server's one batched
encoder thread, exactly as in production — and watches each stream's WebSocket for
``--seconds`` after ``--warmup``:

- **lag**: wall time a frame was processed (encoded and fed to its detector) minus the time
  the camera delivered it (decoded by the pull source). The server measures it per frame; the
  ``status`` messages carry the newest frame's (``lag_s``, sampled every 0.5 s, p95 and max
  over the phase after warm-up) and a p95 over the session's last 256 frames (``lag_p95_s``);
- **dropped share**: frames dropped by the source's ring and by the session's queue (live
  semantics: the oldest goes) over frames sampled;
- **RSS** of the server process over time (flat = no leak) and its CPU use.

The phases run side by side in one process on one machine, so the 8-camera numbers come with
their 1-camera floor (``ratio``). Usage::

    python scripts/bench_live.py --phases 1,8 --seconds 60           # the 8-camera target
    python scripts/bench_live.py --phases 1,8 --seconds 60 --no-captions   # encoder path only
    python scripts/bench_live.py --phases 1 --seconds 600 --warmup 30  # 10-minute hold
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "integration" / "servers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_camera(fps: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = ["/usr/bin/python3", str(SERVER / "rtsp_server.py"), str(port), "--fps", str(fps)]
    camera = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert camera.stdout is not None and camera.stdout.readline().strip() == b"ready"
    return camera, f"rtsp://127.0.0.1:{port}/cam"


def start_server(
    profile: str, workdir: Path, sources: int, timeout_s: float, captions: bool
) -> tuple[subprocess.Popen[bytes], str]:
    """``evs serve`` on a free loopback port (no keys: loopback only), ready."""
    port = free_port()
    env = {
        **({} if captions else {"EVS_LANGUAGE__BACKEND": "none"}),
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "EVS_SERVER__STATUS_INTERVAL_S": "0.5",
        "EVS_SERVER__MAX_PULLS": str(max(8, sources)),
        "EVS_SERVER__MAX_PULLS_PER_KEY": str(max(8, sources)),
        "EVS_SERVER__MAX_SESSIONS_PER_KEY": str(max(8, sources)),
    }
    cmd = [
        sys.executable, "-m", "eventvstream.cli", "serve", "--config", profile,
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(workdir / "data"),
    ]  # fmt: skip
    log = open(workdir / "server.log", "wb")  # noqa: SIM115  (kept open for the process)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None:
            raise SystemExit(f"evs serve exited: see {workdir / 'server.log'}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit(f"evs serve not ready in {timeout_s:.0f}s")
        time.sleep(0.5)


async def watch(url: str, stream: str, until: float, warm: float, out: dict[str, Any]) -> None:
    """Collect a stream's status messages (and count its events) until ``until``."""
    ws_url = url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
    lags: list[float] = []
    async with websockets.connect(ws_url, max_size=None) as ws:
        while time.time() < until:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, until - time.time()))
            except TimeoutError:
                break
            message = json.loads(raw)
            if message["type"] == "status":
                out["status"] = message
                if time.time() >= warm:
                    lags.append(float(message["lag_s"]))
            elif message["type"] == "event.boundary":
                out["events"] = out.get("events", 0) + 1
    out["lags"] = lags


async def phase(url: str, camera: str, n: int, args: argparse.Namespace, proc: Any) -> dict:
    streams = [f"cam{n}x{i}" for i in range(n)]
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for stream in streams:
            body = {"id": stream, "source": {"url": camera, "fps": args.fps}}
            response = await client.post("/v1/streams", json=body)
            response.raise_for_status()
        start, load0 = time.time(), os.getloadavg()[0]
        warm, until = start + args.warmup, start + args.warmup + args.seconds
        outs: list[dict[str, Any]] = [{} for _ in streams]
        watchers = [
            asyncio.create_task(watch(url, s, until, warm, o))
            for s, o in zip(streams, outs, strict=True)
        ]
        rss: list[tuple[float, float]] = []
        cpu0 = None
        while time.time() < until:
            if cpu0 is None and time.time() >= warm:
                cpu0, cpu_t0 = proc.cpu_times(), time.time()
            rss.append((round(time.time() - start, 1), round(proc.memory_info().rss / 2**20, 1)))
            await asyncio.sleep(2.0)
        await asyncio.gather(*watchers)
        cpu1 = proc.cpu_times()
        sources = []
        for stream in streams:
            info = (await client.get(f"/v1/streams/{stream}")).json()
            sources.append(info["source"])
        for stream in streams:
            await client.delete(f"/v1/streams/{stream}")
    lags = [x for o in outs for x in o.get("lags", [])]
    statuses = [o.get("status", {}) for o in outs]
    sampled = sum(s["frames_sampled"] for s in sources)
    ring_dropped = sum(s["frames_dropped"] for s in sources)
    received = sum(st.get("frames_received", 0) for st in statuses)
    queue_dropped = sum(st.get("frames_dropped", 0) for st in statuses)
    processed = sum(st.get("frames_processed", 0) for st in statuses)
    after_warmup = [m for t, m in rss if t >= args.warmup]
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system) if cpu0 else 0.0
    return {
        "sources": n,
        "load_average_1m": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "lag_p95_s": round(float(np.percentile(lags, 95)), 3) if lags else None,
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lag_samples": len(lags),
        "server_lag_p95_s_worst": max((st.get("lag_p95_s", 0.0) for st in statuses), default=0),
        "frames_sampled": sampled,
        "frames_processed": processed,
        "dropped_share": round((ring_dropped + queue_dropped) / sampled, 4) if sampled else None,
        "dropped_ring": ring_dropped,
        "dropped_queue": queue_dropped,
        "frames_received_by_sessions": received,
        "events": sum(o.get("events", 0) for o in outs),
        "reconnects": sum(s["reconnects"] for s in sources),
        "states": sorted({s["state"] for s in sources}),
        "server_cpu_percent_of_one_core": round(100 * busy / (until - cpu_t0), 1) if cpu0 else None,
        "rss_mib": rss,
        "rss_growth_after_warmup_mib": round(after_warmup[-1] - after_warmup[0], 1)
        if len(after_warmup) > 1
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phases", default="1,8", help="cameras per phase, in order (one server)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured, per phase")
    ap.add_argument("--warmup", type=float, default=15.0, help="before measuring, per phase")
    ap.add_argument("--fps", type=float, default=2.0, help="sampling rate per camera")
    ap.add_argument("--camera-fps", type=int, default=10)
    ap.add_argument("--config", default="default", help="profile (default: the CPU default)")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    ap.add_argument(
        "--no-captions",
        action="store_true",
        help="no decoder (language.backend none): the encoder path alone, without the "
        "captions competing for the same cores",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    phases = [int(p) for p in args.phases.split(",")]

    camera, camera_url = start_camera(args.camera_fps)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        workdir = Path(tmp)
        t_start = time.monotonic()
        server, url = start_server(
            args.config, workdir, max(phases), args.ready_timeout, not args.no_captions
        )
        ready_s = time.monotonic() - t_start
        try:
            proc = psutil.Process(server.pid)
            results = [asyncio.run(phase(url, camera_url, n, args, proc)) for n in phases]
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            camera.kill()
    floor = results[0]
    for r in results[1:]:
        if floor["lag_p95_s"] and r["lag_p95_s"] is not None:
            r["lag_p95_ratio_to_first_phase"] = round(r["lag_p95_s"] / floor["lag_p95_s"], 2)
    report = {
        "camera": f"320x240 H.264 @ {args.camera_fps} fps (GStreamer RTSP, TCP), shared",
        "profile": args.config,
        "captions": not args.no_captions,
        "fps": args.fps,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "cpus": os.cpu_count(),
        "server_ready_s": round(ready_s, 1),
        "phases": results,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
