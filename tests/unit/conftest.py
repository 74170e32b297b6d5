"""Constructed frame sequences for the pure event-layer tests."""

from __future__ import annotations

import numpy as np
import pytest


class SceneFactory:
    """Scenes as (unit feature direction, texture image); frames are noisy views of a scene."""

    def __init__(self, dim: int = 64, size: tuple[int, int] = (72, 128), seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.dim = dim
        self.size = size

    def scene(self) -> tuple[np.ndarray, np.ndarray]:
        direction = np.abs(self.rng.standard_normal(self.dim)).astype(np.float32)
        direction /= np.linalg.norm(direction)
        coarse = self.rng.integers(0, 256, (9, 16, 3)).astype(np.uint8)
        image = np.kron(coarse, np.ones((self.size[0] // 9, self.size[1] // 16, 1), np.uint8))
        return direction, image

    def frame(
        self, scene: tuple[np.ndarray, np.ndarray], noise: float = 0.02, pixel_noise: float = 4.0
    ) -> tuple[np.ndarray, np.ndarray]:
        direction, image = scene
        feature = direction + noise * self.rng.standard_normal(self.dim).astype(np.float32)
        feature /= np.linalg.norm(feature)
        noisy = image.astype(np.float32) + pixel_noise * self.rng.standard_normal(image.shape)
        return feature.astype(np.float32), np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture
def scenes() -> SceneFactory:
    return SceneFactory()
