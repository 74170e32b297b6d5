"""Run a loaded torch encoder through ONNX Runtime on the CPU.

Why: on CPUs without native bf16 kernels the default encoder (EfficientNet-Lite0, fp32) is the
bottleneck of the whole pipeline. PyTorch's eager CPU kernels for its depthwise convolutions
and ReLU6 are slow; ONNX Runtime runs the same graph about 3x faster with features equal to
1e-5 (2-core AMD EPYC, batch 16 at 224x398: 320 ms against 950 ms; ``scripts/bench_encoder.py``).

The model is still loaded the one way (torch, from the packaged or given checkpoint, BatchNorms
folded); this module only traces that module once into an in-memory ONNX graph (about 1 s) and
hands batches to an ``InferenceSession``. Nothing is written to disk and nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings

import numpy as np
import torch
from torch import nn

from eventvstream.errors import ModelLoadError

log = logging.getLogger(__name__)

#: ``encoder.runtime`` values.
RUNTIMES = ("auto", "torch", "onnxruntime")

#: Images per ``session.run``, whatever batch the caller hands over. One 224x398 frame's early
#: activations are about 3 MB, so 4 frames' stay in a server CPU's last-level cache and 16
#: frames' do not: on the 2-core EPYC (32 MB L3) 4 ran at 12.6-13.0 ms a frame against
#: 14.2-15.8 ms for 16 (docs/benchmarks.md, "Encoder sub-batches"). Callers still batch as they
#: like (the live encoder gathers frames from many streams); only the run is split.
RUN_IMAGES = 4


def onnxruntime_available() -> bool:
    """Both halves are importable: ``onnx`` (torch's exporter writes with it) and the runtime."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def use_onnxruntime(runtime: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``runtime`` resolves to ONNX Runtime for this device and dtype.

    ``auto`` picks it for fp32 on the CPU when it is installed (bf16 on a CPU with native bf16
    kernels and every GPU stay on torch); ``onnxruntime`` insists and says why it cannot.
    """
    if runtime == "torch":
        return False
    fits = device.type == "cpu" and dtype == torch.float32
    if runtime == "auto":
        return fits and onnxruntime_available()
    if runtime != "onnxruntime":
        raise ModelLoadError(f"unknown encoder.runtime {runtime!r}; use one of {RUNTIMES}")
    if not fits:
        raise ModelLoadError(
            "encoder.runtime: onnxruntime runs fp32 on the CPU only; set encoder.precision: fp32 "
            "and device: cpu, or encoder.runtime: auto"
        )
    if not onnxruntime_available():
        raise ModelLoadError(
            "encoder.runtime: onnxruntime needs the onnx and onnxruntime packages "
            "(pip install onnx onnxruntime), or set encoder.runtime: torch"
        )
    return True


class OnnxRunner:
    """``module``'s forward as an ONNX Runtime session: float32 NCHW in, float32 out.

    Batch, height and width are dynamic, so one session serves every batch and frame size.
    """

    def __init__(self, module: nn.Module, example: torch.Tensor, threads: int) -> None:
        import onnxruntime as ort

        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes about Python-side shape arithmetic
            torch.onnx.export(
                module.eval(),
                (example,),
                buffer,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}},
                dynamo=False,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its info lines are not for our users
        # No busy-waiting between batches: the decoder thread and other streams share the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            buffer.getvalue(), options, providers=["CPUExecutionProvider"]
        )
        self.threads = threads

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(images.detach().to(torch.float32).cpu().numpy())
        outs = [
            self.session.run(None, {"images": array[start : start + RUN_IMAGES]})[0]
            for start in range(0, max(1, len(array)), RUN_IMAGES)
        ]
        return torch.from_numpy(np.concatenate(outs) if len(outs) != 1 else outs[0])
