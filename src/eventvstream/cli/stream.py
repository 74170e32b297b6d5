"""``evs stream VIDEO --url URL``: replay a video file to a server over the WebSocket protocol.

A real client of ``/v1/streams/{id}/ws`` (see docs/protocol.md): frames are sampled from the
file at the session fps, sent as JPEG with their video timestamps, paced at real time (or
``--speed`` times faster), and everything the server pushes (event boundaries, caption deltas,
status, errors, answers) is printed as it arrives. With ``--ask`` it asks a question once the
file has been sent and the captions are done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import struct
import sys
import time
from typing import Any

from eventvstream.cli.common import (
    Subparsers,
    positive_float,
    positive_int,
    speed_factor,
    video_source,
)
from eventvstream.errors import EvsError

JPEG_QUALITY = 85


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("stream", help="replay a video to a running server over its WebSocket")
    p.add_argument("video", help="video file to replay")
    p.add_argument(
        "--url", default="ws://127.0.0.1:8000", help="server base URL (ws:// or http://)"
    )
    p.add_argument("--stream", help="stream id (default: the file name without extension)")
    p.add_argument("--key", default=None, help="API key (default: $EVS_API_KEY)")
    p.add_argument("--fps", type=positive_float, default=2.0, help="frames per second sent")
    p.add_argument(
        "--speed", type=speed_factor, default=1.0, help="replay speed (0 = as fast as possible)"
    )
    p.add_argument("--short-side", type=positive_int, default=256, help="frames are scaled to this")
    p.add_argument("--no-generate", action="store_true", help="ask the server not to caption")
    p.add_argument("--ask", help="a question to ask when the file has been sent")
    p.add_argument("--json", action="store_true", help="print server messages as JSON lines")
    p.add_argument(
        "--wait", type=positive_float, default=120.0, help="max seconds to wait for captions"
    )


_URL_SCHEMES = ("ws", "wss", "http", "https")


def ws_url(base: str, stream: str) -> str:
    base = base.rstrip("/")
    if base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    return f"{base}/v1/streams/{stream}/ws"


def frame_message(t: float, image: Any) -> bytes:
    """The binary frame message: 8-byte big-endian float64 timestamp, then JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return struct.pack(">d", t) + buffer.getvalue()


def render(message: dict[str, Any]) -> str | None:
    kind = message.get("type")
    if kind == "event.boundary":
        labels = ", ".join(str(n) for n, *_ in message.get("labels", [])[:3])
        merged = " (merged)" if message.get("merged") else ""
        return (
            f"event #{message['event_id']}{merged} {message['start']:.1f}s - "
            f"{message['end']:.1f}s  {labels}"
        )
    if kind == "event.caption.done":
        return f"  caption #{message['event_id']}: {message['caption']}"
    if kind == "response.done":
        cites = ", ".join(
            f"#{c['id']} {c['start']:.1f}-{c['end']:.1f}s" for c in message.get("citations", [])
        )
        return f"answer: {message['text']}\n  cites: {cites or '-'}"
    if kind == "error":
        return f"server error [{message.get('code')}]: {message.get('message')}"
    return None


async def replay(args: argparse.Namespace) -> int:
    import websockets

    from eventvstream.media import open_video

    stream = args.stream or args.video.stem
    key = args.key or os.environ.get("EVS_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else None
    state: dict[str, Any] = {
        "pending": None,
        "answered": asyncio.Event(),
        "ready": asyncio.Event(),
        "ended": asyncio.Event(),
    }
    gone = asyncio.Event()  # the listener ended: the server closed or the connection dropped

    async def until(event: asyncio.Event, timeout: float) -> None:
        """Wait for ``event`` — or stop at once when the server is gone."""
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(gone.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if gone.is_set() and not event.is_set():
            await state["listener"]  # raises ConnectionClosed with the server's close code
            raise EvsError("the server closed the connection", code="disconnected")
        if not event.is_set():
            raise asyncio.TimeoutError

    def show(message: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(message), flush=True)
            return
        line = render(message)
        if line:
            print(line, flush=True)

    async def receive(ws: Any) -> None:
        try:
            await _listen(ws)
        finally:
            gone.set()

    async def _listen(ws: Any) -> None:
        async for raw in ws:
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "session.ready":
                state["ready"].set()
            elif kind == "status":
                state["pending"] = message.get("captions_pending", 0) + message.get(
                    "queue_depth", 0
                )
            elif kind == "response.done":
                state["answered"].set()
            elif kind == "input.ended":
                state["ended"].set()
            if kind not in ("status", "event.caption.delta", "response.delta") or args.json:
                show(message)

    try:
        connection = websockets.connect(
            ws_url(args.url, stream),
            additional_headers=headers,
            subprotocols=["evs.v1"],
            max_size=16 * 2**20,
        )
        async with connection as ws:
            listener = asyncio.create_task(receive(ws))
            state["listener"] = listener
            config = {"type": "session.config", "fps": args.fps, "generate": not args.no_generate}
            await ws.send(json.dumps(config))
            await until(state["ready"], 30)
            sent = 0
            started = time.perf_counter()
            with open_video(args.video, fps=args.fps, short_side=args.short_side) as video:
                for chunk in video:
                    for t, image in zip(chunk.times, chunk.images, strict=True):
                        if args.speed > 0:
                            delay = float(t) / args.speed - (time.perf_counter() - started)
                            if delay > 0:
                                await asyncio.sleep(delay)
                        await ws.send(frame_message(float(t), image))
                        sent += 1
            print(f"sent {sent} frames in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            deadline = time.perf_counter() + args.wait
            # The file is over: close its last event now, so a question sees all of it.
            await ws.send(json.dumps({"type": "input.end", "id": "end"}))
            await until(state["ended"], max(5.0, args.wait))
            await asyncio.sleep(1.5)  # let the last status report arrive
            while (state["pending"] or 0) > 0 and time.perf_counter() < deadline:
                if gone.is_set():
                    await until(asyncio.Event(), 0)  # reports how the server left
                await asyncio.sleep(0.5)
            if args.ask:
                await ws.send(json.dumps({"type": "query", "id": "ask", "text": args.ask}))
                await until(state["answered"], max(5.0, deadline - time.perf_counter()))
            await ws.close()
            listener.cancel()
    except websockets.exceptions.InvalidStatus as exc:
        status = exc.response.status_code
        raise EvsError(f"server refused the stream (HTTP {status})", code="refused") from None
    except websockets.exceptions.ConnectionClosed as exc:
        raise EvsError(_closed_message(exc), code="disconnected") from None
    except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
        raise EvsError(
            f"cannot stream to {args.url}: {exc or type(exc).__name__}", code="unreachable"
        ) from None
    finally:
        listener = state.get("listener")
        if listener is not None:  # never leave it to print "exception never retrieved"
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
    return 0


def _closed_message(exc: Any) -> str:
    """Why the server went away, in one line (e.g. a 1001 drain, a 1008 from the server)."""
    received = getattr(exc, "rcvd", None)
    if received is None:
        return "the server went away (the connection was lost)"
    reason = f": {received.reason}" if received.reason else ""
    return f"the server closed the connection (code {received.code}{reason})"


def main(args: argparse.Namespace) -> int:
    args.video = video_source(args.video, live=False)
    scheme = args.url.split("://", 1)[0].lower() if "://" in args.url else ""
    if scheme not in _URL_SCHEMES:
        raise EvsError(
            f"--url {args.url!r}: give the server's base URL, ws://, wss://, http:// or https://",
            code="bad_url",
        )
    return asyncio.run(replay(args))
