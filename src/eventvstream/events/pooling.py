"""Event embedding pooling and keyframe choice (pure)."""

from __future__ import annotations

from typing import Literal

import numpy as np


def pool_embedding(
    features: np.ndarray,
    times: np.ndarray,
    mode: Literal["mean", "boundary"] = "boundary",
    width_s: float = 1.0,
) -> np.ndarray:
    """Pool an event's (N, D) unit features into one unit vector.

    ``boundary`` follows the Event-VStream paper: frames near either boundary weigh more (up to
    2x, decaying over ``width_s``), because the moments where content changes are the most
    distinctive of what the event is *about* relative to its neighbours.
    """
    if len(features) == 0:
        raise ValueError("cannot pool an empty event")
    if mode == "mean" or len(features) == 1:
        weights = np.ones(len(features), dtype=np.float32)
    else:
        start, end = float(times[0]), float(times[-1])
        near = np.minimum(times - start, end - times)
        weights = (1.0 + np.exp(-near / max(width_s, 1e-6))).astype(np.float32)
    pooled = (weights[:, None] * features).sum(axis=0)
    norm = float(np.linalg.norm(pooled))
    return (pooled / norm if norm > 0 else pooled).astype(np.float32)


def choose_keyframes(features: np.ndarray, pooled: np.ndarray, k: int) -> list[int]:
    """Indices (in time order) of up to ``k`` keyframes: the medoid, then farthest-point picks.

    The medoid (frame closest to the pooled embedding) is the most representative frame; each
    further pick is the frame least similar to those already chosen, so keyframes cover what
    changed inside the event rather than repeating it.
    """
    n = len(features)
    if n == 0:
        return []
    chosen = [int(np.argmax(features @ pooled))]
    best_sim = features @ features[chosen[0]]
    while len(chosen) < min(k, n):
        candidate = int(np.argmin(best_sim))
        if candidate in chosen:
            break
        chosen.append(candidate)
        best_sim = np.maximum(best_sim, features @ features[candidate])
    return sorted(chosen)


class ImageReservoir:
    """Keeps at most ``capacity`` images of an event, evenly spread over it, in O(capacity) memory.

    When full, every other image is dropped and the keep-stride doubles — a long event keeps a
    coarse but even sample, a short one keeps every frame.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.stride = 1
        self.items: list[tuple[int, np.ndarray]] = []  # (position in event, image)

    def offer(self, position: int, image: np.ndarray) -> None:
        if position % self.stride:
            return
        self.items.append((position, image))
        if len(self.items) > self.capacity:
            self.stride *= 2
            self.items = [item for item in self.items if item[0] % self.stride == 0]

    def positions(self) -> list[int]:
        return [position for position, _ in self.items]

    def image_at(self, position: int) -> np.ndarray | None:
        for pos, image in self.items:
            if pos == position:
                return image
        return None
