"""Hard cuts placed on their exact frame: the PyAV frame window (media/window.py) feeding
events.refine, on real footage and through the whole segmenter."""

from __future__ import annotations

import pytest

from eventvstream.config import load_settings
from eventvstream.events.metrics import score_boundaries
from eventvstream.events.refine import locate_cut
from eventvstream.media.window import FrameWindowReader
from eventvstream.pipeline import Segmenter


def test_frame_window_finds_each_real_cut_on_its_frame(bikes_video):
    path, truth = bikes_video
    reader = FrameWindowReader(path, (32, 18))
    try:
        for cut in truth["boundaries"]:
            frames = reader(cut - 0.45, cut + 0.3)
            assert frames, cut
            if frames[0][0] == pytest.approx(cut, abs=1e-3):
                continue  # the encoder put a keyframe on the cut: the span starts right there
            assert locate_cut(frames) == pytest.approx(cut, abs=1e-3)
    finally:
        reader.close()


def test_frame_window_is_empty_past_the_end_and_for_a_far_keyframe(bikes_video):
    path, _ = bikes_video
    reader = FrameWindowReader(path, (32, 18), max_lead_s=0.0)
    try:
        assert reader(60.0, 61.0) == []
    finally:
        reader.close()


@pytest.mark.slow
def test_segmenter_places_real_cuts_within_a_frame(bikes_video):
    path, truth = bikes_video
    events = list(Segmenter(load_settings("default")).segment(path))
    starts = [e.start for e in events[1:]]
    score = score_boundaries(starts, truth["boundaries"], 0.05)
    assert score.tp == len(truth["boundaries"]), starts
