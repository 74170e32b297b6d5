"""Batched preprocessing: geometry, normalisation, input validation (no models involved)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from eventvstream.perception.preprocess import preprocess

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def _solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rgb
    return img


def test_varying_sizes_give_one_batch_of_the_requested_size() -> None:
    rng = np.random.default_rng(0)
    sizes = [(240, 320), (1080, 1920), (33, 17), (1, 1), (224, 224), (500, 90)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    out = preprocess(images, 64, MEAN, STD)
    assert out.shape == (len(sizes), 3, 64, 64)
    assert out.dtype == torch.float32
    assert out.is_contiguous()
    assert torch.isfinite(out).all()


def test_array_batch_and_list_agree() -> None:
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (4, 48, 80, 3), dtype=np.uint8)
    assert torch.equal(preprocess(batch, 32, MEAN, STD), preprocess(list(batch), 32, MEAN, STD))


def test_empty_batch() -> None:
    assert preprocess([], 32, MEAN, STD).shape == (0, 3, 32, 32)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 200, 255])
def test_normalisation_is_exact_per_channel(value: int) -> None:
    out = preprocess([_solid(50, 70, (value, value, value))], 16, MEAN, STD)
    expected = (value / 255.0 - torch.tensor(MEAN)) / torch.tensor(STD)
    per_channel = out[0].reshape(3, -1)
    assert torch.allclose(per_channel, expected[:, None].expand_as(per_channel), atol=1e-5)


def test_half_normalisation_maps_to_about_plus_minus_one() -> None:
    """(x - 127) / 128, the EfficientNet-Lite convention, as 0..1-scale mean/std."""
    mean, std = (127 / 255,) * 3, (128 / 255,) * 3
    out = preprocess([_solid(8, 8, (0, 127, 255))], 8, mean, std)
    assert out[0, :, 0, 0].tolist() == pytest.approx([-127 / 128, 0.0, 128 / 128], abs=1e-6)


def test_shortest_mode_center_crops_and_squash_keeps_the_sides() -> None:
    # A wide frame: red centre square, blue side bands.
    img = _solid(100, 300, (0, 0, 255))
    img[:, 100:200] = (255, 0, 0)
    crop = preprocess([img], 32, (0, 0, 0), (1, 1, 1))[0]
    assert torch.allclose(crop[0], torch.ones(32, 32), atol=1e-6)  # all red
    assert torch.allclose(crop[2], torch.zeros(32, 32), atol=1e-6)  # no blue
    squash = preprocess([img], 32, (0, 0, 0), (1, 1, 1), resize_mode="squash")[0]
    assert squash[2, :, 0].mean() > 0.9  # left edge is blue
    assert squash[0, :, 16].mean() > 0.9  # middle still red


def test_crop_fraction_zooms_in() -> None:
    img = _solid(100, 100, (0, 0, 0))
    img[25:75, 25:75] = (255, 255, 255)  # the middle half is white
    full = preprocess([img], 20, (0, 0, 0), (1, 1, 1))[0]
    zoomed = preprocess([img], 20, (0, 0, 0), (1, 1, 1), crop_fraction=0.5)[0]
    assert full.mean() == pytest.approx(0.25, abs=0.03)
    assert zoomed.mean() == pytest.approx(1.0, abs=1e-6)


def test_matches_pil_bilinear_resize_of_the_center_crop() -> None:
    rng = np.random.default_rng(2)
    img = np.kron(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), np.ones((12, 12, 1), np.uint8))
    h, w = img.shape[:2]  # 360 x 480
    left = (w - h) // 2
    ref = np.asarray(Image.fromarray(img[:, left : left + h]).resize((96, 96), Image.BILINEAR))
    ours = preprocess([img], 96, (0, 0, 0), (1 / 255,) * 3)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - ref.astype(np.float32)).mean() < 0.5


def test_dtype_and_channels_last_options() -> None:
    img = _solid(40, 60, (10, 20, 30))
    out = preprocess([img], 24, MEAN, STD, dtype=torch.bfloat16, channels_last=True)
    assert out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=torch.channels_last)
    bicubic = preprocess([img], 24, MEAN, STD, interpolation="bicubic")
    assert bicubic.shape == (1, 3, 24, 24)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        ([np.zeros((10, 10, 3), np.float32)], "uint8"),
        ([np.zeros((10, 10), np.uint8)], "HxWx3"),
        ([np.zeros((10, 10, 4), np.uint8)], "HxWx3"),
        (np.zeros((10, 10, 3), np.uint8), "batch"),
        ([np.zeros((0, 10, 3), np.uint8)], "empty"),
    ],
)
def test_bad_inputs_fail_with_a_clear_message(images: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        preprocess(images, 16, MEAN, STD)  # type: ignore[arg-type]


def test_bad_options_are_rejected() -> None:
    img = [_solid(4, 4, (0, 0, 0))]
    with pytest.raises(ValueError, match="crop_fraction"):
        preprocess(img, 4, MEAN, STD, crop_fraction=0.0)
    with pytest.raises(ValueError, match="size"):
        preprocess(img, 0, MEAN, STD)
    with pytest.raises(ValueError, match="resize_mode"):
        preprocess(img, 4, MEAN, STD, resize_mode="stretch")  # type: ignore[arg-type]
