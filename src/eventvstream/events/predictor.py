"""A small MLP that predicts the next frame feature, trained online per stream (pure numpy).

f̂_t = f_{t-1} + W2 · relu(W1 · [f_{t-1}, f_{t-1} − f_{t-2}] + b1) + b2

The residual form starts as "nothing changes" (W2 = 0), which is already a sensible predictor,
and the velocity input lets it learn steady drift such as a camera pan. One SGD step per frame
on the squared error keeps it adapted to the current stream without any offline training data.
Gradients are clipped so a single odd frame cannot blow it up.
"""

from __future__ import annotations

import numpy as np


class OnlinePredictor:
    def __init__(
        self, dim: int, hidden: int = 64, lr: float = 0.05, seed: int = 0, clip: float = 1.0
    ) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.lr = lr
        self.clip = clip
        scale = 1.0 / np.sqrt(2 * dim)
        self.w1 = (rng.standard_normal((hidden, 2 * dim)) * scale).astype(np.float32)
        self.b1 = np.zeros(hidden, dtype=np.float32)
        self.w2 = np.zeros((dim, hidden), dtype=np.float32)
        self.b2 = np.zeros(dim, dtype=np.float32)
        self.updates = 0

    def _inputs(self, prev: np.ndarray, prev2: np.ndarray | None) -> np.ndarray:
        velocity = np.zeros_like(prev) if prev2 is None else prev - prev2
        return np.concatenate([prev, velocity]).astype(np.float32)

    def predict(self, prev: np.ndarray, prev2: np.ndarray | None = None) -> np.ndarray:
        x = self._inputs(prev, prev2)
        hidden = np.maximum(self.w1 @ x + self.b1, 0.0)
        return prev + self.w2 @ hidden + self.b2

    def update(self, prev: np.ndarray, prev2: np.ndarray | None, target: np.ndarray) -> float:
        """One SGD step towards predicting ``target``; returns the loss before the step."""
        if self.lr == 0:
            return float(np.sum((self.predict(prev, prev2) - target) ** 2))
        x = self._inputs(prev, prev2)
        pre = self.w1 @ x + self.b1
        hidden = np.maximum(pre, 0.0)
        error = prev + self.w2 @ hidden + self.b2 - target
        loss = float(np.sum(error**2))
        grad_out = 2.0 * error
        norm = float(np.linalg.norm(grad_out))
        if norm > self.clip:
            grad_out *= self.clip / norm
        grad_hidden = (self.w2.T @ grad_out) * (pre > 0)
        self.w2 -= self.lr * np.outer(grad_out, hidden)
        self.b2 -= self.lr * grad_out
        self.w1 -= self.lr * np.outer(grad_hidden, x)
        self.b1 -= self.lr * grad_hidden
        self.updates += 1
        return loss
