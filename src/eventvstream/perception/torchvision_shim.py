"""Make ``import torchvision`` (and so ``import open_clip``) work on a CPU-only torch.

Why this exists: for torch 2.13 only a CUDA build of torchvision 0.28 is published. On a CPU torch
its compiled extension (``torchvision/_C.so``) fails to load. torchvision tolerates that for most
ops (it checks ``extension._has_ops()`` first), but ``torchvision/_meta_registrations.py``
unconditionally calls ``torch.library.register_fake("torchvision::nms")`` (and ``::qnms``) at
import time, and registering a fake kernel for an operator with no schema raises::

    RuntimeError: operator torchvision::nms does not exist

That kills ``import torchvision`` and with it ``import open_clip``, although everything we use
(transforms metadata, open_clip's models) is pure Python. Defining the two missing schemas lets
the import finish. Calling ``torchvision.ops.nms`` would still fail (no kernel) - we never do.

The fix is applied only after a real import attempt failed with exactly that error, so on a
machine where torchvision's extension loads (a CUDA torch) this is a plain ``import torchvision``
and defines nothing: defining the schemas there would clash with the real C++ registrations.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading

import torch

log = logging.getLogger(__name__)

# Schemas copied from torchvision's C++ registrations (csrc/ops/nms.cpp, quantized/qnms). Found
# by trial: these are the only operators the import touches without checking _has_ops().
_MISSING_OP_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

_lock = threading.Lock()
_done = False
# Keeps the fragment alive: torch drops a Library's definitions when the object is collected.
_library: torch.library.Library | None = None


def _forget_partial_import() -> None:
    """A failed package import leaves already-imported submodules in ``sys.modules``; drop them
    so the retry re-executes torchvision from the top instead of seeing half-built modules."""
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def _is_missing_op_error(exc: BaseException) -> bool:
    text = str(exc)
    return "torchvision::" in text and "does not exist" in text


def ensure_torchvision_importable() -> None:
    """Import torchvision, registering the op schemas it needs if its C++ ops cannot load.

    Idempotent and thread-safe. Raises the original error for any other import failure.
    """
    global _done, _library
    if _done:
        return
    with _lock:
        if _done:
            return
        try:
            importlib.import_module("torchvision")
        except RuntimeError as exc:
            if not _is_missing_op_error(exc):
                raise
            _forget_partial_import()
            missing = [n for n in _MISSING_OP_SCHEMAS if not _has_schema(f"torchvision::{n}")]
            _library = torch.library.Library("torchvision", "FRAGMENT")
            for name in missing:
                _library.define(_MISSING_OP_SCHEMAS[name])
            log.debug(
                "torchvision's C++ ops are unavailable (CPU torch with a CUDA torchvision); "
                "registered schemas for %s so its Python parts import",
                ", ".join(missing),
            )
            importlib.import_module("torchvision")
        _done = True


def _has_schema(qualname: str) -> bool:
    try:
        torch._C._get_schema(qualname, "")
    except RuntimeError:
        return False
    return True
