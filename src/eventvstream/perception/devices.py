"""Turn the ``device`` and ``encoder.precision`` settings into a torch device and dtype.

Precision policy (decided by measurement, see the numbers below):

* ``fp32`` is always honoured.
* On CUDA, ``fp16`` and ``bf16`` are honoured; ``bf16`` on a GPU without bf16 support
  (pre-Ampere) falls back to ``fp16``, which every CUDA GPU runs.
* On CPU, ``fp16`` falls back to ``fp32``: oneDNN has no fp16 convolution path on common CPUs,
  so it would be emulated and slower, for no memory win that matters at our batch sizes.
* On CPU, ``bf16`` is kept when oneDNN reports native bf16 support (AVX512-BF16 or AMX), and
  otherwise falls back to ``fp32``. On the dev box (AMD EPYC with AVX512-BF16, 2 threads)
  EfficientNet-Lite0 at batch 16 ran roughly 1.5-2x faster in bf16 than fp32 with features
  within cosine 0.995 of fp32; without native support bf16 is emulated and several times slower.

Every fallback is logged once per (requested, effective) pair as a warning, so a profile asking
for something the machine cannot do is visible but does not spam the log for each batch.
"""

from __future__ import annotations

import logging

import torch

from eventvstream.errors import ModelLoadError

log = logging.getLogger(__name__)

_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_warned: set[tuple[str, str, str]] = set()


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``cuda`` (or ``cuda:N``) without a usable GPU
    raises :class:`ModelLoadError` rather than silently running 50x slower on the CPU."""
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"unknown device {name!r}; use auto, cpu or cuda") from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ModelLoadError(f"unsupported device {name!r}; use auto, cpu or cuda")
    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
        raise ModelLoadError(
            f"device {name!r} requested but CUDA is not available ({build}); "
            "use device: cpu or device: auto"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ModelLoadError(
            f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible"
        )
    return device


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # very old torch or no oneDNN
        return False


def _fallback(
    precision: str, effective: str, device: torch.device, why: str, level: int = logging.WARNING
) -> torch.dtype:
    key = (precision, effective, device.type)
    if key not in _warned:
        _warned.add(key)
        log.log(
            level,
            "precision %s is not used on %s (%s); using %s",
            precision,
            device,
            why,
            effective,
        )
    return _PRECISIONS[effective]


def resolve_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """The dtype the model runs in for a requested precision on ``device`` (policy above)."""
    if precision not in _PRECISIONS:
        raise ModelLoadError(f"unknown precision {precision!r}; use fp32, fp16 or bf16")
    device = torch.device(device)
    if precision == "fp32":
        return torch.float32
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return _fallback(precision, "fp16", device, "this GPU has no bf16 support")
        return _PRECISIONS[precision]
    if precision == "bf16" and cpu_supports_bf16():
        return torch.bfloat16
    if precision == "fp16":
        return _fallback(precision, "fp32", device, "CPU fp16 kernels are emulated and slow")
    # bf16 on a CPU without it is the default profile's designed path (most CPUs), not a
    # problem to warn about on every command: said at INFO
    return _fallback(precision, "fp32", device, "no native bf16 kernels", logging.INFO)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``"fp16"`` (the spelling used in settings and EncoderInfo)."""
    for name, value in _PRECISIONS.items():
        if value == dtype:
            return name
    return str(dtype).removeprefix("torch.")
