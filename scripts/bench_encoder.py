#!/usr/bin/env python
"""Image-encoder throughput: frames encoded per second at several batch sizes.

    python scripts/bench_encoder.py --config gpu --random-if-offline      # ViT-L-14 fp16, GPU
    python scripts/bench_encoder.py --config default --batch-sizes 1 8 16  # EfficientNet, CPU

Through our own encoder code path (``load_encoder`` + ``encode_images``: preprocessing, the
model, L2 normalisation, the copy back to the host), on frames of the profile's decode size
(``sampling.decode_short_side``, 16:9). Speed depends on shapes, not weights: with
``--random-if-offline`` a profile whose hub weights cannot be fetched is measured with random
weights of the same architecture, and the record says so. Each batch size gets one warm-up and
then runs for ``--seconds``; the record is the rate over whole batches. The floor to compare
with is the real-time need: N live streams at 2 fps need 2·N frames/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import numpy as np

from eventvstream.config import load_settings
from eventvstream.errors import EvsError
from eventvstream.perception import load_encoder


def load(settings: Any, random_if_offline: bool) -> tuple[Any, str]:
    """The encoder and where its weights came from."""
    enc = settings.encoder
    try:
        return load_encoder(enc, settings.device), f"{enc.pretrained or 'random'}"
    except EvsError as exc:
        if not random_if_offline or enc.pretrained is None:
            raise
        print(f"bench_encoder: {exc.message}; measuring random weights", file=sys.stderr)
        random = enc.model_validate(enc.model_dump() | {"pretrained": None})
        return load_encoder(random, settings.device), "random (hub weights unreachable)"


def frames(settings: Any, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    short = settings.sampling.decode_short_side
    shape = (short, round(short * 16 / 9), 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def rate(encoder: Any, batch: list[np.ndarray], seconds: float) -> dict[str, float]:
    encoder.encode_images(batch)  # warm-up: kernels, allocator, autotuning
    done = 0
    started = time.perf_counter()
    while True:
        encoder.encode_images(batch)  # returns host arrays: the GPU work is finished
        done += len(batch)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            per_batch_ms = 1000 * elapsed * len(batch) / done
            return {"frames_per_s": done / elapsed, "ms_per_batch": per_batch_ms}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="gpu")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: the profile's)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64, 128, 256])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed run per batch size")
    ap.add_argument("--random-if-offline", action="store_true")
    args = ap.parse_args()
    settings = load_settings(args.config, **({"device": args.device} if args.device else {}))
    started = time.perf_counter()
    encoder, weights = load(settings, args.random_if_offline)
    load_s = time.perf_counter() - started
    info = encoder.info
    device = str(info.device)
    if device.startswith("cuda"):
        import torch

        device += f" ({torch.cuda.get_device_name(0)})"
    else:
        device += f" ({platform.processor() or platform.machine()})"
    pool = frames(settings, max(args.batch_sizes))
    levels = []
    for size in args.batch_sizes:
        result = rate(encoder, pool[:size], args.seconds)
        levels.append({"batch": size, **{k: round(v, 2) for k, v in result.items()}})
        print(json.dumps(levels[-1]), file=sys.stderr, flush=True)
    record = {
        "encoder": f"{settings.encoder.backend}/{settings.encoder.model}",
        "weights": weights,
        "precision": info.dtype,
        "device": device,
        "frame": f"{pool[0].shape[1]}x{pool[0].shape[0]}",
        "load_s": round(load_s, 1),
        "levels": levels,
        "streams_at_2fps_best": int(max(lv["frames_per_s"] for lv in levels) // 2),
        "command": "python scripts/bench_encoder.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
