"""Boundary scoring: precision, recall and F1 at a time tolerance.

Pure functions on lists of times (seconds). Matching is one-to-one: each true boundary can be
claimed by at most one prediction, closest pairs first, so a burst of predictions around one
cut counts one hit and the rest as false positives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BoundaryScore:
    tolerance: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        predicted = self.tp + self.fp
        return self.tp / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.tp + self.fn
        return self.tp / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if (p + r) else 0.0

    def __add__(self, other: BoundaryScore) -> BoundaryScore:
        """Micro-average: add counts across videos of one category."""
        if other.tolerance != self.tolerance:
            raise ValueError("cannot add scores at different tolerances")
        return BoundaryScore(
            self.tolerance, self.tp + other.tp, self.fp + other.fp, self.fn + other.fn
        )

    def to_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def match_boundaries(
    predicted: Sequence[float], truth: Sequence[float], tolerance: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, closest pairs first; returns (pred_idx, truth_idx) pairs."""
    pairs = sorted(
        (abs(p - t), i, j)
        for i, p in enumerate(predicted)
        for j, t in enumerate(truth)
        if abs(p - t) <= tolerance
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches.append((i, j))
    return matches


def score_boundaries(
    predicted: Sequence[float], truth: Sequence[float], tolerance: float
) -> BoundaryScore:
    """Score predicted boundary times against ground-truth times."""
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    tp = len(match_boundaries(predicted, truth, tolerance))
    return BoundaryScore(tolerance, tp, len(predicted) - tp, len(truth) - tp)


def total(scores: Iterable[BoundaryScore]) -> BoundaryScore | None:
    """Sum scores (same tolerance) into one micro-averaged score; None for an empty input."""
    result: BoundaryScore | None = None
    for score in scores:
        result = score if result is None else result + score
    return result
