"""Batched image preprocessing shared by every encoder backend.

Frames arrive as HxWx3 uint8 RGB arrays of any size and aspect; encoders want an NCHW float
tensor at one square size, normalised with the model's mean/std.

Geometry: resize the shorter side, then center-crop a square (``crop_fraction`` of the shorter
side; 1.0 keeps the largest centred square). We crop rather than squash because both backends
were trained and evaluated on undistorted, centre-cropped images; squashing a 16:9 frame into a
square stretches objects by 1.8x and measurably hurts recognition (on ``skimage.data.rocket()``
the EfficientNet top-1 flips from "missile" to "drilling rig"). The crop is taken in *source*
pixels before resizing so no work is spent on pixels we throw away.

Speed: each image is resized with ``torch.nn.functional.interpolate(..., antialias=True)`` on
the uint8 tensor in channels-last layout, which hits torch's vectorised uint8 antialias kernels
(bilinear and bicubic; the ones torchvision's ``Resize`` uses). Measured on the 2-core dev
box, 16 images to 224x224, bilinear (best of 7):

    source      PIL.resize   torch float32   torch uint8 (used)
    360x640       12.4 ms        6.1 ms          1.8 ms
    1080x1920     59.7 ms       28.7 ms          7.4 ms

and its output equals PIL's bilinear resize to within 0.002 grey levels on average. Resizing
always happens on the CPU (the uint8 kernel is CPU-only); only the small uint8 batch is moved to
the device, where the float conversion and normalisation run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

ImageBatch = Sequence[np.ndarray] | np.ndarray
Interpolation = Literal["bilinear", "bicubic"]
ResizeMode = Literal["shortest", "squash"]

#: Mean/std on the 0..255 scale that map uint8 to (x - 127) / 128, i.e. about [-1, 1].
HALF_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
HALF_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


def as_image_list(images: ImageBatch) -> list[np.ndarray]:
    """Accept a list of HxWx3 arrays or one (N, H, W, 3) array; validate dtype and shape early
    so a bad frame fails with a clear message instead of deep inside a conv layer."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            raise ValueError("expected a batch of images: (N, H, W, 3) or a list of (H, W, 3)")
        batch = list(images)
    else:
        batch = list(images)
    for i, img in enumerate(batch):
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", type(img).__name__)
            raise ValueError(f"image {i}: expected an HxWx3 RGB array, got {shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"image {i}: expected dtype uint8, got {img.dtype}")
        if img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f"image {i}: empty image {img.shape}")
    return batch


def _crop_box(h: int, w: int, crop_fraction: float) -> tuple[int, int, int]:
    """Top, left and side of the centred square that survives the crop, in source pixels."""
    side = max(1, round(min(h, w) * crop_fraction))
    return (h - side) // 2, (w - side) // 2, side


def resize_crop_uint8(
    img: np.ndarray,
    size: int,
    crop_fraction: float = 1.0,
    interpolation: Interpolation = "bilinear",
    resize_mode: ResizeMode = "shortest",
) -> torch.Tensor:
    """One HxWx3 uint8 image -> (1, 3, size, size) uint8 tensor (channels-last memory)."""
    if resize_mode == "squash":
        patch = img
    else:
        top, left, side = _crop_box(img.shape[0], img.shape[1], crop_fraction)
        patch = img[top : top + side, left : left + side]
    x = torch.from_numpy(np.ascontiguousarray(patch))
    x = x.permute(2, 0, 1).unsqueeze(0).contiguous(memory_format=torch.channels_last)
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(
        x, size=(size, size), mode=interpolation, antialias=True, align_corners=False
    )


def preprocess(
    images: ImageBatch,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    crop_fraction: float = 1.0,
    interpolation: Interpolation = "bilinear",
    resize_mode: ResizeMode = "shortest",
    channels_last: bool = False,
) -> torch.Tensor:
    """Images -> normalised ``(N, 3, size, size)`` tensor on ``device`` in ``dtype``.

    ``mean``/``std`` are on the 0..1 scale (as open_clip and torchvision report them).
    ``crop_fraction`` < 1 zooms in (classic ImageNet eval uses 0.875); 1.0 keeps the most
    context, which suits video frames whose action is often off-centre. ``resize_mode="squash"``
    resizes the whole frame to the square instead, for models trained that way (SigLIP).
    ``interpolation`` follows the model's training pipeline (CLIP and EfficientNet: bicubic).
    """
    if resize_mode not in ("shortest", "squash"):
        raise ValueError(f"resize_mode must be 'shortest' or 'squash', got {resize_mode!r}")
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    batch = as_image_list(images)
    device = torch.device(device)
    if not batch:
        return torch.empty((0, 3, size, size), device=device, dtype=dtype)
    u8 = torch.cat(
        [resize_crop_uint8(img, size, crop_fraction, interpolation, resize_mode) for img in batch]
    )
    u8 = u8.to(device, non_blocking=True)
    # (x / 255 - mean) / std == x * scale + shift: one fused multiply-add per pixel.
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    scale = 1.0 / (255.0 * std_t)
    shift = -mean_t / std_t
    out = torch.addcmul(shift, u8.float(), scale)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return out.to(dtype=dtype, memory_format=memory_format)
