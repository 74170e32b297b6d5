"""The 1000 ImageNet class names, shipped as a text file so the runtime never imports torchvision.

``imagenet_labels.txt`` was generated once from ``open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES``
(one name per line, class-index order). We use open_clip's cleaned names rather than
torchvision's WordNet-style ones because they are what CLIP's zero-shot prompts were tuned on
("tabby cat" rather than "tabby") and they read better in event descriptions. They contain two
duplicated names (classes 657/744 are both "missile", 638/639 both "sunglasses");
:func:`top_k_named` merges such duplicates so a caller never sees the same label twice.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import torch

NUM_IMAGENET_CLASSES = 1000


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The class names, index-aligned with ImageNet-1k classifier outputs."""
    text = (resources.files("eventvstream.perception") / "imagenet_labels.txt").read_text("utf-8")
    labels = tuple(line for line in text.splitlines() if line)
    if len(labels) != NUM_IMAGENET_CLASSES:  # a packaging error, not a user error
        raise RuntimeError(f"imagenet_labels.txt has {len(labels)} names, expected 1000")
    return labels


@lru_cache(maxsize=8)
def _name_groups(labels: tuple[str, ...]) -> tuple[tuple[str, ...], torch.Tensor]:
    """Distinct names (first-seen order) and, per class index, the index of its name."""
    names: dict[str, int] = {}
    group = [names.setdefault(label, len(names)) for label in labels]
    return tuple(names), torch.tensor(group, dtype=torch.long)


def top_k_named(
    probs: torch.Tensor, labels: tuple[str, ...], k: int
) -> list[list[tuple[str, float]]]:
    """Per row of ``probs`` (N, C), the k most probable *names* with their summed probability.

    Summing over classes that share a name is what "the probability of this label" means, and it
    keeps duplicates out of the top k.
    """
    if k <= 0:
        return [[] for _ in range(probs.shape[0])]
    names, group = _name_groups(labels)
    probs = probs.detach().float().cpu()
    merged = torch.zeros(probs.shape[0], len(names)).index_add_(1, group, probs)
    values, indices = merged.topk(min(k, len(names)), dim=1)
    return [
        [(names[i], float(v)) for v, i in zip(vals, idxs, strict=True)]
        for vals, idxs in zip(values.tolist(), indices.tolist(), strict=True)
    ]
