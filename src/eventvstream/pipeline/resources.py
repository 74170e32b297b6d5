"""How a pipeline splits the CPU between the video decoder and the encoder.

Why this exists: the decoder (FFmpeg threads, in its own process) and the encoder (torch
intra-op threads) run at the same time. Left to their defaults, each takes every core; on a
2-core machine that is four busy threads on two cores, and torch's spinning worker threads
make both slower than running one after the other (measured: 0.58 of decode-only throughput
with 2+2 threads, 0.88 with 1+1 — docs/benchmarks.md). So unless told otherwise we give the
decoder a share of the cores and the encoder the rest. Re-measured with the ONNX Runtime encoder
(round 4): a second decoder thread still does not pay on two cores, because the encoder's
bursts stall FFmpeg's frame threads (ours 1.49x its 2-thread decoder alone, 1.09x its 1-thread
one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from eventvstream.config import Settings


@dataclass(frozen=True)
class CpuPlan:
    decode_threads: int
    encoder_threads: int | None  # None: leave torch alone (the encoder is on a GPU)


def available_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def plan_cpu(settings: Settings, *, encoder_on_cpu: bool, cores: int | None = None) -> CpuPlan:
    """Explicit settings win; otherwise decode gets 1 thread on up to 4 cores (2 above that)
    and a CPU encoder gets the remaining cores."""
    cores = cores or available_cores()
    decode = settings.sampling.decode_threads or (1 if cores <= 4 else 2)
    if not encoder_on_cpu:
        return CpuPlan(settings.sampling.decode_threads or min(4, cores), None)
    encoder = settings.encoder.threads or max(1, cores - decode)
    return CpuPlan(decode, encoder)
