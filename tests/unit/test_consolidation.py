"""Merge-or-append on constructed sequences."""

from __future__ import annotations

import numpy as np
import pytest

from eventvstream.memory.consolidation import SlotSummary, decide, merged


def unit(*values: float) -> np.ndarray:
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def slot(start, end, *direction, frames=4):
    return SlotSummary(start, end, frames, unit(*direction))


def test_first_event_appends():
    decision = decide(None, slot(0, 2, 1, 0), threshold=0.9, max_gap_s=2)
    assert not decision.merge and "first" in decision.reason


def test_similar_adjacent_events_merge():
    decision = decide(slot(0, 2, 1, 0), slot(2, 4, 1, 0.1), threshold=0.9, max_gap_s=2)
    assert decision.merge and decision.similarity > 0.99


def test_different_events_append():
    decision = decide(slot(0, 2, 1, 0), slot(2, 4, 0, 1), threshold=0.9, max_gap_s=2)
    assert not decision.merge and decision.similarity == pytest.approx(0.0)


def test_similar_but_far_apart_in_time_append():
    decision = decide(slot(0, 2, 1, 0), slot(10, 12, 1, 0), threshold=0.9, max_gap_s=2)
    assert not decision.merge and "gap" in decision.reason


def test_out_of_order_and_disabled_append():
    assert not decide(slot(5, 8, 1, 0), slot(1, 2, 1, 0), threshold=0.9, max_gap_s=2).merge
    disabled = decide(slot(0, 2, 1, 0), slot(2, 4, 1, 0), threshold=0.9, max_gap_s=2, enabled=False)
    assert not disabled.merge


def test_merged_slot_widens_span_and_weights_by_frames():
    a = slot(0, 2, 1, 0, frames=30)
    b = slot(2, 3, 0, 1, frames=10)
    result = merged(a, b)
    assert (result.start, result.end, result.frames) == (0, 3, 40)
    assert np.linalg.norm(result.embedding) == pytest.approx(1.0)
    assert result.embedding[0] == pytest.approx(3 * result.embedding[1])


def test_repetitive_sequence_stays_bounded():
    """An hour of the same scene, event after event, consolidates into one slot."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal(16).astype(np.float32)
    slots: list[SlotSummary] = []
    for i in range(1800):
        v = base + 0.05 * rng.standard_normal(16).astype(np.float32)
        new = SlotSummary(i * 2.0, i * 2.0 + 2.0, 4, v / np.linalg.norm(v))
        last = slots[-1] if slots else None
        if decide(last, new, threshold=0.9, max_gap_s=2).merge and last is not None:
            slots[-1] = merged(last, new)
        else:
            slots.append(new)
    assert len(slots) == 1 and slots[0].end == pytest.approx(3600.0)
