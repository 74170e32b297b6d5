"""Generated videos for integration tests (made with Debian's ffmpeg, never committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def testsrc_video(video_dir: Path) -> Path:
    """10 s, 320x240 @ 25 fps, H.264: a moving test pattern."""
    path = video_dir / "testsrc.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-t",
        "10",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


@pytest.fixture(scope="session")
def truncated_video(video_dir: Path, testsrc_video: Path) -> Path:
    data = testsrc_video.read_bytes()
    path = video_dir / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.fixture(scope="session")
def corrupt_video(video_dir: Path, testsrc_video: Path) -> Path:
    """The header survives, the middle of the stream is overwritten with garbage."""
    data = bytearray(testsrc_video.read_bytes())
    start = len(data) // 3
    data[start : start + 20000] = bytes((i * 7919) % 251 for i in range(20000))
    path = video_dir / "corrupt.mp4"
    path.write_bytes(bytes(data))
    return path
