"""A live client of the WebSocket API for the benchmarks, and an ``evs serve`` it can start.

:func:`replay` sends a video's frames to ``/v1/streams/{id}/ws`` at real-time pace (the way
``evs stream`` does: sampled at the session fps, JPEG, the video's own timestamps), asks
questions *while* it streams when they have a stream time (an OVO-Bench / StreamingBench
question is asked at its timestamp, the frames keep coming), and asks the rest after the end:
``input.end`` first, so the last event is closed and stored, then the captions are waited for,
then one question at a time. Every answer comes back with its latency: send of the ``query``
message to its ``response.done``, as a client of a live server sees it.

The frame encoding and the message format are ``eventvstream.cli.stream``'s (one place for the
protocol's client side); this module adds the question schedule and the timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eventvstream.cli.stream import frame_message, ws_url


@dataclass
class Ask:
    """A question, asked when the stream clock reaches ``at`` (None: after the input ends)."""

    id: str
    text: str
    at: float | None = None


@dataclass
class Reply:
    id: str
    text: str = ""
    intent: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = float("nan")
    error: str | None = None
    phrased: bool | None = None  # the decoder's phrasing passed the checks (else the template)
    sent_at: float = 0.0  # stream time of the last frame sent when the question went out

    def to_answer(self) -> dict[str, Any]:
        """The shape bench_qa's scorer reads (``Answer.to_dict()``)."""
        return {"text": self.text, "citations": self.citations, "intent": self.intent}


@dataclass
class Replay:
    """What one replay saw: the replies, the stored events (with captions), the timing."""

    replies: dict[str, Reply]
    events: dict[int, dict[str, Any]]
    frames_sent: int
    seconds: float
    lag_p95_s: float = 0.0
    frames_dropped: int = 0


async def replay(
    url: str,
    stream: str,
    video: Path,
    asks: list[Ask],
    *,
    fps: float = 2.0,
    speed: float = 1.0,
    short_side: int = 256,
    until: float | None = None,
    generate: bool = False,
    fresh: bool = True,
    key: str | None = None,
    wait_captions_s: float = 300.0,
    answer_timeout_s: float = 120.0,
) -> Replay:
    """Stream ``video`` (up to ``until`` seconds, default all) and ask ``asks``; see the module
    docstring. ``fresh`` starts the stream over on the server (``resume: false``)."""
    import websockets

    from eventvstream.media import open_video

    headers = {"Authorization": f"Bearer {key}"} if key else None
    replies: dict[str, Reply] = {}
    done: dict[str, asyncio.Event] = {a.id: asyncio.Event() for a in asks}
    events: dict[int, dict[str, Any]] = {}
    state: dict[str, Any] = {"pending": 0, "lag": 0.0, "dropped": 0}
    ready, ended = asyncio.Event(), asyncio.Event()
    sent_clock: dict[str, float] = {}

    async def listen(ws: Any) -> None:
        async for raw in ws:
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "session.ready":
                ready.set()
            elif kind == "input.ended":
                ended.set()
            elif kind == "status":
                state["pending"] = message.get("captions_pending", 0) + message.get(
                    "queue_depth", 0
                )
                state["lag"] = max(state["lag"], float(message.get("lag_p95_s") or 0.0))
                state["dropped"] = int(message.get("frames_dropped") or 0)
            elif kind == "event.boundary":
                events[message["event_id"]] = {
                    "id": message["event_id"], "start": message["start"], "end": message["end"],
                    "caption": events.get(message["event_id"], {}).get("caption"),
                }  # fmt: skip
            elif kind == "event.caption.done":
                events.setdefault(message["event_id"], {"id": message["event_id"]})
                events[message["event_id"]]["caption"] = message["caption"]
            elif kind in ("response.done", "error") and message.get("id") in done:
                qid = message["id"]
                reply = replies[qid]
                reply.latency_s = time.perf_counter() - sent_clock[qid]
                if kind == "error":
                    reply.error = f"{message.get('code')}: {message.get('message')}"
                else:
                    reply.text = message["text"]
                    reply.intent = message.get("intent", "")
                    reply.citations = message.get("citations", [])
                    reply.phrased = message.get("phrased")
                done[qid].set()

    async def ask(ws: Any, item: Ask, clock: float) -> None:
        replies[item.id] = Reply(item.id, sent_at=clock)
        sent_clock[item.id] = time.perf_counter()
        await ws.send(json.dumps({"type": "query", "id": item.id, "text": item.text}))

    timed = sorted((a for a in asks if a.at is not None), key=lambda a: a.at or 0.0)
    after = [a for a in asks if a.at is None]
    limit = until if until is not None else float("inf")
    connection = websockets.connect(
        ws_url(url, stream), additional_headers=headers, subprotocols=["evs.v1"],
        max_size=16 * 2**20, open_timeout=60,
    )  # fmt: skip
    sent = 0
    started = time.perf_counter()
    async with connection as ws:
        listener = asyncio.create_task(listen(ws))
        try:
            config = {"type": "session.config", "fps": fps, "generate": generate}
            await ws.send(json.dumps({**config, "resume": not fresh}))
            await asyncio.wait_for(ready.wait(), 60)
            last_t = 0.0
            with open_video(video, fps=fps, short_side=short_side) as frames:
                for chunk in frames:
                    for t, image in zip(chunk.times, chunk.images, strict=True):
                        t = float(t)
                        if t > limit:
                            break
                        while timed and (timed[0].at or 0.0) < t:
                            await ask(ws, timed.pop(0), last_t)
                        if speed > 0:
                            delay = t / speed - (time.perf_counter() - started)
                            if delay > 0:
                                await asyncio.sleep(delay)
                        await ws.send(frame_message(t, image))
                        sent, last_t = sent + 1, t
                    else:
                        continue
                    break
            for item in timed:  # question times past the last frame: ask now
                await ask(ws, item, last_t)
            seconds = time.perf_counter() - started
            if after:
                await ws.send(json.dumps({"type": "input.end", "id": "end"}))
                await asyncio.wait_for(ended.wait(), answer_timeout_s)
                await asyncio.sleep(1.5)  # the next status report says what is still pending
                deadline = time.perf_counter() + wait_captions_s
                while state["pending"] > 0 and time.perf_counter() < deadline:
                    await asyncio.sleep(0.5)
            for item in after:  # one at a time: the latency of a question, not of a queue
                await ask(ws, item, last_t)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done[item.id].wait(), answer_timeout_s)
            for item in asks:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done[item.id].wait(), answer_timeout_s)
                if not done[item.id].is_set():
                    replies[item.id].error = "timeout"
        finally:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
    return Replay(replies, events, sent, seconds, state["lag"], state["dropped"])


# -- a server process ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Until ``url`` answers 200; exit with the log's tail if the process dies or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{log.name}: exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"not ready after {timeout_s:.0f} s: {url}\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def evs_server(
    data_dir: Path, profile: str | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real ``evs serve`` on a free loopback port (no auth: loopback); yields its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "-m", "eventvstream.cli", "serve", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--data-dir", str(data_dir)]
    cmd += ["--config", profile] if profile else []
    log = data_dir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", proc, log, 600)
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def llama_server(python: str, log_dir: Path, threads: int = 2) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the packaged SmolLM2-135M GGUF (built by
    ``scripts/setup_llama_server.sh``); yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    from eventvstream.language.loading import packaged_gguf

    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [python, "-m", "llama_cpp.server", "--model", str(packaged_gguf())]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    cmd += ["--n_threads", str(threads)]
    log = log_dir / "llama-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_http(f"{base}/models", proc, log, 180)
        yield base
    finally:
        stop(proc)


def remote_env(base_url: str) -> dict[str, str]:
    """The ``remote`` profile against a local llama.cpp server, on this machine: the decoder is
    the server's (intent parsing and phrasing on, as the profile sets them); perception is the
    default profile's packaged EfficientNet, because the profile's ViT-L-14 weights come from a
    hub that cannot be reached here."""
    return {
        "EVS_LANGUAGE__BASE_URL": base_url,
        "EVS_LANGUAGE__MODEL": "smollm2",
        "EVS_LANGUAGE__TIMEOUT_S": "120",
        "EVS_DEVICE": "cpu",
        "EVS_ENCODER__BACKEND": "efficientnet",
        "EVS_ENCODER__MODEL": "efficientnet-lite0",
        "EVS_ENCODER__PRETRAINED": "packaged",
        "EVS_ENCODER__PRECISION": "bf16",
        "EVS_ENCODER__BATCH_SIZE": "16",
        "EVS_SAMPLING__DECODE_SHORT_SIDE": "224",
        "EVS_SAMPLING__CHUNK_FRAMES": "16",
    }
