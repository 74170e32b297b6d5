"""One swscale context per stream gives the same pixels as PyAV's per-frame reformat.

``media/frames.py`` keeps one reformatter per stream for speed; these check on real decoded
H.264 frames that the arrays are bit-identical to ``frame.reformat`` (RGB for the encoder, grey
area-averaged thumbnails for exact cut placement), also when the frame size changes mid-stream,
as a camera may.
"""

from __future__ import annotations

import itertools

import av
import numpy as np

from eventvstream.media.frames import grey_thumbnailer, rgb_converter


def _frames(path, count: int) -> list:
    with av.open(str(path)) as container:
        return list(itertools.islice(container.decode(video=0), count))


def test_rgb_matches_per_frame_reformat(testsrc_video):
    convert = rgb_converter(160, 120)
    for frame in _frames(testsrc_video, 12):
        expected = frame.reformat(width=160, height=120, format="rgb24").to_ndarray()
        got = convert(frame)
        assert got.shape == (120, 160, 3) and got.dtype == np.uint8
        assert np.array_equal(got, expected)


def test_rgb_turns_a_rotated_frame_upright(testsrc_video):
    frame = _frames(testsrc_video, 1)[0]
    stored = frame.reformat(width=160, height=120, format="rgb24").to_ndarray()
    got = rgb_converter(160, 120, turns=1)(frame)  # one clockwise quarter turn
    assert got.shape == (160, 120, 3)
    assert np.array_equal(got, np.rot90(stored, k=-1))


def test_thumbnails_match_area_reformat_across_a_size_change(testsrc_video):
    thumbnail = grey_thumbnailer((32, 18))
    frames = _frames(testsrc_video, 6)
    # A smaller picture in the middle: the cached scaler must be rebuilt, not reused.
    small = [f.reformat(width=176, height=144) for f in frames[:2]]
    for frame in frames[:3] + small + frames[3:]:
        expected = frame.reformat(width=32, height=18, format="gray", interpolation="AREA")
        want = expected.to_ndarray().astype(np.float32) / 255.0
        got = thumbnail(frame)
        assert got.shape == (18, 32) and got.dtype == np.float32
        assert np.array_equal(got, want)
    assert float(got.min()) >= 0.0 and float(got.max()) <= 1.0
