"""Shared pieces of the API tests: tiny settings, generated frames, message helpers.

Everything runs on tiny models so no test waits on real weights: the tiny random open_clip of the
``tiny`` profile, and a tiny random Llama (two layers, 32 wide) with the packaged SmolLM2 tokenizer
as the decoder, which still runs the real transformers generate/streaming code path.
"""

from __future__ import annotations

import io
import struct
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from eventvstream.config import Settings, load_settings

TINY_LLAMA: dict[str, Any] = dict(load_settings("tiny").language.model_config_json or {})
LANGUAGE: dict[str, Any] = {
    "backend": "transformers",
    "model_config_json": TINY_LLAMA,
    "caption_max_tokens": 6,
    "answer_max_tokens": 8,
}
# The tiny random encoder makes weak features; a lower threshold makes its cuts reliable.
EVENTS = {"tau0": 3.0}
KEYS = ("key-a", "key-b")


def tiny_settings(data_dir: Path, **server: Any) -> Settings:
    defaults: dict[str, Any] = {
        "api_keys": list(KEYS),
        "status_interval_s": 0.2,
        "rate_per_s": 1000.0,
        "burst": 1000,
    }
    return load_settings(
        "tiny",
        language=LANGUAGE,
        memory={"data_dir": str(data_dir)},
        server=defaults | server,
    )


def write_profile(path: Path, data_dir: Path, **server: Any) -> Path:
    """A YAML profile for a real ``evs serve`` process: the tiny profile plus the overrides."""
    tiny = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"
    data = yaml.safe_load(tiny.read_text())
    data["language"] = LANGUAGE
    data["memory"] = {"data_dir": str(data_dir)}
    data["server"] = {"api_keys": list(KEYS), "status_interval_s": 0.2} | server
    path.write_text(yaml.safe_dump(data))
    return path


@lru_cache(maxsize=4)
def cut_frames(n_shots: int = 3, fps: float = 2.0, seed: int = 7) -> tuple[np.ndarray, ...]:
    """Frames (128x72) of a clip of photos joined by hard cuts (eventvstream.testdata)."""
    from eventvstream import testdata

    spec = testdata.cuts_clip(seed, n_shots=n_shots, shot_s=(3.0, 3.5))
    return tuple(testdata.iter_frames(spec, 128, 72, fps))


def jpeg(frame: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def binary_frame(t: float, data: bytes) -> bytes:
    """The WebSocket binary frame: 8-byte big-endian float64 time, then the image bytes."""
    return struct.pack(">d", t) + data


def auth(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_ready(client: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("server never became ready")


def receive_until(ws: Any, want: Any, timeout: float = 30.0) -> tuple[dict[str, Any], list]:
    """Read messages (TestClient session) until ``want(message)``; returns it and everything
    read before it. Status messages arrive every ``status_interval_s``, so the deadline is
    checked often even when nothing else comes."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.receive_json()
        if want(message):
            return message, seen
        seen.append(message)
    types = sorted({m["type"] for m in seen})
    raise AssertionError(f"timed out; saw {len(seen)} messages of types {types}")
