"""open_clip image/text encoder (the GPU profile, and tiny random models for tests).

Three ways to get weights, all through ``open_clip.create_model`` so users get open_clip's own
checkpoint conversion and validation:

* a pretrained *tag* (e.g. ``ViT-L-14`` + ``openai``): weights come from the Hugging Face hub or
  a URL on first use. If they are already in the local cache we load that file directly, so a
  server with cached weights starts without touching the network. If they are not cached we
  check first that the host is reachable (and that ``HF_HUB_OFFLINE`` is not set): without that
  check huggingface_hub spends ~45 s in retries before failing on a machine with no network.
* a local checkpoint path (``.pt``/``.pth``/``.bin``/``.safetensors``);
* ``pretrained: null``: random weights, seeded by ``encoder.seed`` (tests, benchmarks).

``model_config_json`` registers an architecture under ``model`` through open_clip's public
``add_model_config`` (which reads ``<name>.json`` files), so a tiny test model needs no files.

Images are preprocessed by :mod:`eventvstream.perception.preprocess` with the model's own
size, mean, std, interpolation and resize mode, not by open_clip's PIL transforms (3-8x faster).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F

from eventvstream.config import EncoderSettings
from eventvstream.errors import ModelLoadError
from eventvstream.perception import hub
from eventvstream.perception.base import EncoderInfo
from eventvstream.perception.devices import dtype_name
from eventvstream.perception.labels import imagenet_labels, top_k_named
from eventvstream.perception.preprocess import ImageBatch, as_image_list, preprocess
from eventvstream.perception.torchvision_shim import ensure_torchvision_importable

log = logging.getLogger(__name__)

#: A ~3.4M-parameter CLIP (3.2M of it the token embedding the real tokenizer needs) that creates
#: in ~30 ms and encodes a batch in a few ms on CPU. For tests and CI only: random weights.
TINY_OPEN_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

ZERO_SHOT_TEMPLATE = "a photo of a {}."
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")
_TEXT_BATCH = 256


def _open_clip() -> Any:
    """Import open_clip (it imports torchvision; see torchvision_shim for why that needs help)."""
    ensure_torchvision_importable()
    import open_clip

    return open_clip


def register_model_config(name: str, config: dict[str, Any]) -> None:
    """Register ``config`` as open_clip architecture ``name`` via the public add_model_config.

    open_clip keys configs by file stem, so we write ``<name>.json`` to a temporary directory; the
    registry keeps the parsed dict, so the file is not needed afterwards.
    """
    open_clip = _open_clip()
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ModelLoadError(f"encoder.model_config_json lacks {', '.join(missing)}")
    stem = name.replace("/", "-")
    with tempfile.TemporaryDirectory(prefix="evs-open-clip-") as tmp:
        path = Path(tmp) / f"{stem}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        open_clip.add_model_config(path)
    if open_clip.get_model_config(stem) is None:  # pragma: no cover - open_clip contract
        raise ModelLoadError(f"open_clip did not accept the config registered as {name!r}")


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or (os.altsep is not None and os.altsep in value)
        or value.startswith(("~", "."))
        or value.lower().endswith(_CHECKPOINT_SUFFIXES)
    )


def _cached_tag_file(cfg: dict[str, Any]) -> tuple[str | None, str]:
    """(path of already-downloaded weights or None, host that serves them) for a tag config.

    Mirrors open_clip's ``download_pretrained``: the hub entry wins when present (it is
    ``org/repo/filename``, or ``org/repo/`` for the default file, with a .safetensors sibling
    preferred), otherwise the URL, cached under ``~/.cache/clip``.
    """
    hf_hub = cfg.get("hf_hub", "")
    if hf_hub:
        repo_id, filename = os.path.split(hf_hub)
        filename = filename or "open_clip_pytorch_model.bin"
        candidates = [filename]
        if filename == "open_clip_pytorch_model.bin":
            candidates.insert(0, "open_clip_model.safetensors")
        elif filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        return hub.cached_file(repo_id, candidates), hub.hub_host()
    url = cfg.get("url", "")
    if not url:
        return None, ""
    cached = Path("~/.cache/clip").expanduser() / os.path.basename(url)
    return (str(cached) if cached.is_file() else None), urlparse(url).hostname or ""


def _check_download_possible(what: str, host: str) -> None:
    """Fail in seconds, with a useful message, when a download cannot work."""
    if hub.offline():
        why = "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set"
    elif not host or not hub.reachable(host):
        why = f"cannot reach {host or 'the download host'}"
    else:
        return
    raise ModelLoadError(
        f"could not download {what}: {why} (no network?). Pass a local checkpoint path as "
        "encoder.pretrained, or run once with network access to fill the cache."
    )


def _plan_weights(model: str, pretrained: str | None) -> tuple[str | None, dict[str, Any]]:
    """Turn ``pretrained`` into (what to pass to create_model, preprocess overrides).

    Raises :class:`ModelLoadError` up front for anything that would fail later, slowly or
    obscurely: an unknown tag, a missing file, or a download with no way to reach the host.
    """
    if pretrained is None:
        return None, {}
    open_clip = _open_clip()
    tag_cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if tag_cfg:
        if "file" in tag_cfg:  # a tag pointing at a local file (user-registered)
            return pretrained, {}
        keep = ("mean", "std", "interpolation", "resize_mode")
        overrides = {k: tag_cfg[k] for k in keep if k in tag_cfg}
        cached, host = _cached_tag_file(tag_cfg)
        if cached:
            log.info("using cached weights for %s/%s: %s", model, pretrained, cached)
            return cached, overrides
        _check_download_possible(f"open_clip weights {model}/{pretrained}", host)
        return pretrained, overrides
    if _looks_like_path(pretrained) or Path(pretrained).exists():
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"checkpoint not found: {path}")
        return str(path), {}
    tags = open_clip.list_pretrained_tags_by_model(model)
    known = ", ".join(tags) if tags else "none (use a local checkpoint path or null)"
    raise ModelLoadError(
        f"unknown pretrained tag {pretrained!r} for open_clip model {model!r}; known tags: {known}"
    )


class OpenClipEncoder:
    """An open_clip CLIP model behind :class:`~eventvstream.perception.base.ImageEncoder`."""

    def __init__(
        self,
        model_name: str,
        pretrained: str | None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int = 64,
        seed: int = 0,
        model_config: dict[str, Any] | None = None,
    ) -> None:
        open_clip = _open_clip()
        if model_config is not None:
            register_model_config(model_name, model_config)
        is_schema = model_name.startswith(("hf-hub:", "local-dir:"))
        if not is_schema and open_clip.get_model_config(model_name.replace("/", "-")) is None:
            raise ModelLoadError(
                f"unknown open_clip model {model_name!r} (see open_clip.list_models(), or give "
                "encoder.model_config_json)"
            )
        if model_name.startswith("hf-hub:"):
            repo_id = model_name.removeprefix("hf-hub:")
            if hub.cached_file(repo_id, ["open_clip_config.json"]) is None:
                _check_download_possible(f"open_clip model {model_name}", hub.hub_host())
        weights, overrides = _plan_weights(model_name, None if is_schema else pretrained)
        downloading = weights is not None and weights == pretrained and not Path(weights).exists()
        self.device = torch.device(device)
        self.dtype = dtype
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = open_clip.create_model(
                    model_name,
                    pretrained=weights,
                    precision=dtype_name(dtype),
                    device=self.device,
                    force_preprocess_cfg=overrides or None,
                )
        except ModelLoadError:
            raise
        except Exception as exc:  # open_clip raises RuntimeError/ValueError/pickle errors
            if downloading or model_name.startswith("hf-hub:"):
                msg = (
                    f"could not download open_clip weights {model_name}/{pretrained}: {exc}. "
                    "No network? Pass a local checkpoint path as encoder.pretrained."
                )
            else:
                source = f"checkpoint {weights}" if weights else "random init"
                msg = f"could not load open_clip model {model_name!r} from {source}: {exc}"
            raise ModelLoadError(msg) from exc
        self.model = model.eval()
        try:  # hf-hub models may fetch an HF tokenizer
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:
            raise ModelLoadError(f"could not load the tokenizer for {model_name!r}: {exc}") from exc
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if height != width:
            raise ModelLoadError(f"{model_name}: non-square input {size} is not supported")
        self.image_size = int(height)
        self.mean = tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)))
        self.std = tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
        self.interpolation = "bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic"
        self.resize_mode = "squash" if cfg.get("resize_mode") == "squash" else "shortest"
        self.batch_size = batch_size
        self.labels = imagenet_labels()
        self._label_features: torch.Tensor | None = None
        dim = self._output_dim()
        self.info = EncoderInfo(
            backend="open_clip",
            model=model_name,
            dim=dim,
            device=str(self.device),
            dtype=dtype_name(dtype),
            has_text=True,
            has_labels=True,
        )

    @classmethod
    def from_settings(
        cls, settings: EncoderSettings, device: torch.device, dtype: torch.dtype
    ) -> OpenClipEncoder:
        return cls(
            settings.model,
            settings.pretrained,
            device=device,
            dtype=dtype,
            batch_size=settings.batch_size,
            seed=settings.seed,
            model_config=settings.model_config_json,
        )

    def _output_dim(self) -> int:
        """Feature size, read from the model (``embed_dim`` is not an attribute of every model)."""
        with torch.inference_mode():
            return int(self._encode_text_tensor(["x"]).shape[1])

    # -- inference ---------------------------------------------------------------------------

    def _image_features(self, images: list[np.ndarray]) -> torch.Tensor:
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
                    interpolation=self.interpolation,  # type: ignore[arg-type]
                    resize_mode=self.resize_mode,  # type: ignore[arg-type]
                )
                outs.append(F.normalize(self.model.encode_image(x).float(), dim=1))
        if not outs:
            return torch.empty((0, self.info.dim))
        return torch.cat(outs)

    def _encode_text_tensor(self, texts: list[str]) -> torch.Tensor:
        outs = []
        with torch.inference_mode():
            for start in range(0, len(texts), _TEXT_BATCH):
                tokens = self.tokenizer(texts[start : start + _TEXT_BATCH]).to(self.device)
                outs.append(F.normalize(self.model.encode_text(tokens).float(), dim=1))
        return torch.cat(outs)

    def encode_images(self, images: ImageBatch) -> np.ndarray:
        feats = self._image_features(as_image_list(images))
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode_text takes a list of strings")
        if not texts:
            return np.empty((0, self.info.dim), np.float32)
        return self._encode_text_tensor(list(texts)).cpu().numpy().astype(np.float32, copy=False)

    def label_features(self) -> torch.Tensor:
        """Text features of the 1000 zero-shot prompts, computed on first use and kept."""
        if self._label_features is None:
            prompts = [ZERO_SHOT_TEMPLATE.format(label) for label in self.labels]
            self._label_features = self._encode_text_tensor(prompts)
        return self._label_features

    def _label(self, feats: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        if k <= 0 or feats.shape[0] == 0:
            return [[] for _ in range(feats.shape[0])]
        text = self.label_features()
        scale = float(self.model.logit_scale.detach().exp().clamp(max=100.0))
        probs = (scale * feats.to(text.device) @ text.T).softmax(dim=1)
        return top_k_named(probs, self.labels, k)

    def top_labels(self, images: ImageBatch, k: int) -> list[list[tuple[str, float]]]:
        return self._label(self._image_features(as_image_list(images)), k)

    def encode_and_label(
        self, images: ImageBatch, k: int
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Features and top-k labels from one image forward pass."""
        feats = self._image_features(as_image_list(images))
        return feats.cpu().numpy().astype(np.float32, copy=False), self._label(feats, k)
