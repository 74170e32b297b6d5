#!/usr/bin/env python
"""Would labelling crops of each frame let the packaged classifier name more? A measurement.

For the ``bench_qa`` streams of one split (dev by default: decide on dev, never on held-out),
every sampled frame (2 fps, 224 px short side, as ``evs run`` decodes) is classified whole and
as four overlapping tiles (60 % of each side, the corners) plus their mirror images, and the
views are combined per frame in several ways before the usual pooling over each clip's part of
the stream (mean of the per-frame top-20 labels, rolled up to everyday words). Printed: per
clip part and combination, the everyday words that reach the pooled probability a description
calls confident (``CONFIDENT_P``) and the best of the clip's own words; and the cost of a view
relative to the whole frame (the encoder cost ratio of labelling N views is N).

    python scripts/probe_label_views.py --out .bench/qa            # dev streams
    python scripts/probe_label_views.py --out .bench/qa --split held-out

Result on dev (docs/benchmarks.md, "Questions"): no combination names a bicycle, a person
walking or a tree; max over the tiles turns the cartoon rabbit into a confident *bird*
(0.36-0.56), so tiles are not used.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eventvstream.config import load_settings
from eventvstream.language.matching import terms_in
from eventvstream.media import open_video
from eventvstream.perception import load_encoder
from eventvstream.perception.labels import top_k_named
from eventvstream.perception.vocabulary import CONFIDENT_P, roll_up
from eventvstream.pipeline.segmenter import pool_labels
from qa_streams import STREAMS, build, fetch_debs

TILE = 0.6  # side of a corner tile, as a share of the frame's side


def views(image: np.ndarray) -> list[np.ndarray]:
    """The whole frame, then its four corner tiles."""
    h, w = image.shape[:2]
    th, tw = int(h * TILE), int(w * TILE)
    tiles = [image[y : y + th, x : x + tw] for y in (0, h - th) for x in (0, w - tw)]
    return [np.ascontiguousarray(v) for v in (image, *tiles)]


Combine = Callable[[torch.Tensor], torch.Tensor]
#: (views, classes) probabilities of one frame -> (1, classes); views 0-4 as above, 5-9 mirrored
COMBINATIONS: dict[str, Combine] = {
    "whole frame (as now)": lambda p: p[:1],
    "whole + mirror, mean": lambda p: p[[0, 5]].mean(0, keepdim=True),
    "whole + 4 tiles, mean": lambda p: p[:5].mean(0, keepdim=True),
    "whole + 4 tiles, max": lambda p: p[:5].max(0, keepdim=True).values,
    "whole + max of tiles, averaged": lambda p: (p[:1] + p[1:5].max(0, keepdim=True).values) / 2,
    "whole + 4 tiles + mirrors, mean": lambda p: p.mean(0, keepdim=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".bench/qa"))
    parser.add_argument("--split", default="dev", choices=("dev", "held-out"))
    args = parser.parse_args()
    settings = load_settings()
    encoder = load_encoder(settings.encoder, "cpu")
    debs = fetch_debs(args.out / "debs")
    fc = encoder.model._fc
    for spec in (s for s in STREAMS if s.split == args.split):
        video = build(spec, args.out / "streams", debs)
        if video is None:
            continue
        with open_video(video, fps=2.0, short_side=224, chunk_frames=16, timeout_s=60) as v:
            chunks = list(v)
        images = np.concatenate([c.images for c in chunks])
        times = np.concatenate([c.times for c in chunks])
        crops = [c for image in images for c in views(image)]
        crops += [np.ascontiguousarray(c[:, ::-1]) for c in crops]
        started = time.perf_counter()
        pooled = encoder._pooled(crops)
        per_view = (time.perf_counter() - started) / len(crops)
        with torch.inference_mode():
            logits = F.linear(pooled.to(fc.weight.dtype), fc.weight, fc.bias).float()
        n = len(images)
        probs = logits.softmax(1).view(2, n, 5, -1).permute(1, 0, 2, 3).reshape(n, 10, -1)
        print(f"## {spec.name}: {n} frames, {per_view * 1000:.0f} ms per view")
        for name, combine in COMBINATIONS.items():
            frames = [top_k_named(combine(probs[i]), encoder.labels, 20)[0] for i in range(n)]
            print(f"  {name}")
            for segment in spec.segments:
                inside = [i for i, t in enumerate(times) if segment.start <= t <= segment.end]
                words = roll_up(pool_labels([frames[i] for i in inside]))
                confident = [f"{w} {p:.2f}" for w, p in words if p >= CONFIDENT_P][:4]
                own = {t for word in segment.words for t in terms_in(word)}
                best = max((p for w, p in words if w in own), default=0.0)
                print(
                    f"    {segment.clip:9s} confident: {', '.join(confident) or '-':50s} "
                    f"its own words: {best:.2f}"
                )


if __name__ == "__main__":
    main()
