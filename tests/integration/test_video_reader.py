"""The isolated video reader on real generated files, including broken ones."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from eventvstream.errors import DecoderCrashed, MediaError
from eventvstream.media import open_video


@pytest.mark.parametrize("reader", ["pyav", "decord"])
def test_samples_at_target_fps_with_exact_timestamps(testsrc_video, reader):
    if reader == "decord":
        pytest.importorskip("decord")
    with open_video(testsrc_video, fps=2.0, short_side=120, chunk_frames=4, reader=reader) as video:
        info = video.info
        chunks = list(video)
    assert (info.width, info.height, info.frames) == (320, 240, 250)
    assert info.native_fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(10.0, abs=0.05)
    times = np.concatenate([c.times for c in chunks])
    indices = np.concatenate([c.indices for c in chunks])
    # 0.5 s is 12.5 frames at 25 fps: each tick takes the first real frame at or after it.
    expected = np.append(np.ceil(np.arange(20) * 12.5).astype(int), 249)  # + the last frame
    assert indices.tolist() == expected.tolist()
    np.testing.assert_allclose(times, expected / 25.0, atol=1e-3)
    assert all(len(c) <= 4 for c in chunks)
    images = np.concatenate([c.images for c in chunks])
    assert images.shape == (21, 120, 160, 3) and images.dtype == np.uint8


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(MediaError, match="not found") as info:
        open_video(tmp_path / "absent.mp4")
    assert info.value.code == "not_found"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        open_video(empty)


def test_not_a_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    with pytest.raises(MediaError) as info:
        open_video(text)
    assert info.value.code == "unreadable_video"


def test_truncated_file_gives_a_clear_error(truncated_video):
    """ffmpeg writes the mp4 index at the end: a truncated file cannot be opened."""
    with pytest.raises(MediaError) as info:
        open_video(truncated_video, fps=2.0, short_side=120, timeout_s=30)
    assert info.value.code == "unreadable_video"
    assert "truncated.mp4" in info.value.message


def test_corrupt_stream_is_concealed_and_counted(corrupt_video):
    """PyAV, like the ffmpeg tool, skips the packets the decoder rejects and goes on: the file
    reads to its end, on its real clock, and says how much was damaged."""
    with open_video(corrupt_video, fps=2.0, short_side=120, timeout_s=30) as video:
        times = np.concatenate([c.times for c in video])
        info = video.info
    assert info.damaged_packets > 0
    assert info.frames == 250 - info.damaged_packets
    assert info.duration == pytest.approx(10.0, abs=0.05)
    assert times[-1] == pytest.approx(9.96, abs=1e-3)


def test_corrupt_stream_is_contained_with_decord(corrupt_video):
    """decord gives up at the damage: a clear error, not a crash of the caller."""
    pytest.importorskip("decord")
    video = open_video(corrupt_video, fps=2.0, short_side=120, timeout_s=30, reader="decord")
    with pytest.raises(MediaError) as info:
        for _ in video:  # the header is fine: the error comes from decoding the stream
            pass
    assert info.value.code in {"corrupt_video", "decoder_crashed"}
    assert "decoding failed" in info.value.message or "crashed" in info.value.message
    assert "threaded_decoder.cc" not in info.value.message


def test_decoder_crash_is_reported_not_fatal(testsrc_video):
    """Kill the decoder process with SIGSEGV mid-stream, as a decord segfault would."""
    video = open_video(testsrc_video, fps=25.0, short_side=120, chunk_frames=2)
    chunks = iter(video)
    next(chunks)  # the worker is mid-stream: 250 frames, a pipe that holds about two chunks
    os.kill(video._proc.pid, signal.SIGSEGV)
    with pytest.raises(DecoderCrashed, match="signal 11"):
        for _ in chunks:
            pass
    assert video._proc.poll() is not None


def test_early_exit_stops_the_decoder(testsrc_video):
    video = open_video(testsrc_video, fps=25.0, short_side=120, chunk_frames=2)
    for _ in video:
        break
    assert video._proc.wait(timeout=5) is not None
