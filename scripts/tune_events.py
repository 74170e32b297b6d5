"""Sweep event-detector settings on the benchmark set, encoding each video only once.

How the default profile's event settings were chosen, reproducibly: the detector is pure and
fast, so we cache every video's sampled frames and features, then replay the detector under each
candidate setting and score it per category (transition F1@1s, distractor false boundaries).

    python scripts/tune_events.py [--videos .bench/videos] [--grid small|full] [--top 15]

Prints the best settings by a score that puts zero distractor boundaries first, then the worst
transition category's F1, then the mean F1 (so no category is sacrificed for another).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eventvstream.config import EventSettings, load_settings
from eventvstream.errors import MediaError
from eventvstream.events import EventDetector
from eventvstream.events.metrics import score_boundaries, total
from eventvstream.media import open_video
from eventvstream.perception import load_encoder

DISTRACTORS = {"pan", "zoom", "flicker", "noise"}


@dataclass
class Cached:
    name: str
    category: str
    truth: list[float]
    duration: float
    times: np.ndarray
    indices: np.ndarray
    features: np.ndarray
    images: np.ndarray
    path: Path | None = None  # the file, for the segmenter's own frame windows (exact cuts)


def load_set(videos: Path) -> list[tuple[Path, dict]]:
    manifest = videos / "manifest.json"
    items = []
    if manifest.is_file():
        for entry in json.loads(manifest.read_text())["videos"]:
            truth_path = videos / entry["truth"] if "truth" in entry else None
            truth = json.loads(truth_path.read_text()) if truth_path else entry
            category = entry["category"]
            if entry.get("part"):  # the real-footage set: dev and held-out scored apart
                category = f"{entry['part']}:{category}"
            items.append((videos / entry["video"], {**truth, "category": category}))
        return items
    for truth_path in sorted(videos.glob("*.json")):
        video = truth_path.with_suffix(".mp4")
        if video.is_file():
            items.append((video, json.loads(truth_path.read_text())))
    return items


def _encode_one(path: Path, encoder, settings) -> tuple:
    times, indices, feats, images = [], [], [], []
    short = settings.sampling.decode_short_side
    with open_video(path, fps=settings.sampling.fps, short_side=short) as video:
        duration = video.info.duration
        for chunk in video:
            times.append(chunk.times)
            indices.append(chunk.indices)
            feats.append(encoder.encode_images(chunk.images))
            images.append(chunk.images)
    return (
        duration,
        np.concatenate(times),
        np.concatenate(indices),
        np.concatenate(feats),
        np.concatenate(images),
    )


class NotCached(Exception):
    """--cached-only: this video has not been encoded yet."""


def _cached(cache: Path, key: str, make, only: bool = False):
    """One pickle per (video, settings) under ``cache/``, written as soon as it is made."""
    import hashlib

    file = cache / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.pkl"
    if file.is_file():
        return pickle.loads(file.read_bytes())
    if only:
        raise NotCached(key)
    value = make()
    cache.mkdir(parents=True, exist_ok=True)
    file.write_bytes(pickle.dumps(value))
    return value


def encode_all(
    items: list[tuple[Path, dict]], cache: Path, profile: str, *, cached_only: bool = False
) -> list[Cached]:
    """Sampled frames and features of each video, from the cache
    directory or made once (a video the decoder cannot read is skipped with a warning)."""
    settings = load_settings(profile)
    encoder = None
    cached: list[Cached] = []
    for path, truth in tqdm(items, desc="encode", file=sys.stderr):
        stamp = f"{path}:{path.stat().st_mtime_ns}"
        key = (
            f"{stamp}:{profile}:{settings.sampling.fps}:"
            f"{settings.encoder.model_dump_json()}:{settings.sampling.decode_short_side}"
        )
        try:

            def encode(path=path):
                nonlocal encoder
                encoder = encoder or load_encoder(settings.encoder, settings.device)
                return _encode_one(path, encoder, settings)

            duration, times, indices, feats, images = _cached(cache, key, encode, cached_only)
        except NotCached:
            continue
        except MediaError as exc:  # one unreadable video must not sink the sweep
            print(f"warning: skipped {path.name}: {exc}", file=sys.stderr)
            continue
        cached.append(
            Cached(
                path.stem,
                truth["category"],
                list(truth.get("boundaries", [])),
                duration,
                times,
                indices,
                feats,
                images,
                path,
            )
        )
    return cached


def detect(video: Cached, settings: EventSettings, *, exact_cuts: bool = True) -> list[float]:
    """Replay the detector on cached features; hard cuts are placed from the file itself with
    the segmenter's own window reader (so the replay sees the seeks the pipeline sees)."""
    reader = None
    if exact_cuts and video.path is not None:
        from eventvstream.media.window import FrameWindowReader

        reader = FrameWindowReader(video.path, tuple(settings.motion_grid))
    detector = EventDetector(settings, frame_window=reader)
    events = []
    for i in range(len(video.times)):
        events += detector.push(
            float(video.times[i]), int(video.indices[i]), video.features[i], video.images[i]
        )
    events += detector.flush(video.duration)
    if reader is not None:
        reader.close()
    return [e.start for e in events[1:]]


def evaluate(
    videos: list[Cached], settings: EventSettings, *, exact_cuts: bool = True
) -> dict[str, dict]:
    per_category: dict[str, list] = {}
    minutes: dict[str, float] = {}
    for video in videos:
        predicted = detect(video, settings, exact_cuts=exact_cuts)
        per_category.setdefault(video.category, []).append(
            tuple(score_boundaries(predicted, video.truth, tol) for tol in (1.0, 0.5, 0.1))
        )
        minutes[video.category] = minutes.get(video.category, 0.0) + video.duration / 60
    report = {}
    for category, scores in per_category.items():
        one, half, tenth = (total(s[i] for s in scores) for i in range(3))
        report[category] = {"f1@1": one.f1, "f1@0.5": half.f1, "f1@0.1": tenth.f1}
        report[category].update(fp=one.fp, fn=one.fn, minutes=minutes[category])
    return report


def rank_real(report: dict[str, dict], part: str = "dev") -> tuple[float, float, float]:
    """Real footage: false boundaries per 5 minutes of single-shot footage must stay <= 1, then
    the worst transition category's F1@1, then the mean of F1@1 and hard-cut F1@0.1."""
    single = report.get(f"{part}:single")
    rate = single["fp"] / single["minutes"] * 5 if single else 0.0
    kinds = [f"{part}:{k}" for k in ("cuts", "dissolves", "fades", "native")]
    f1s = [report[k]["f1@1"] for k in kinds if k in report]
    cut_exact = [report[k]["f1@0.1"] for k in (kinds[0], kinds[3]) if k in report]
    worst = min(f1s, default=0.0)
    return (-max(0.0, rate - 1.0), worst, float(np.mean(f1s + cut_exact)) if f1s else 0.0)


def rank(report: dict[str, dict]) -> tuple[float, float, float]:
    if any(":" in c for c in report):
        return rank_real(report)
    false_alarms = sum(r["fp"] for c, r in report.items() if c in DISTRACTORS)
    f1s = [r["f1@1"] for c, r in report.items() if c not in DISTRACTORS]
    return (-false_alarms, min(f1s, default=0.0), float(np.mean(f1s)) if f1s else 0.0)


GRIDS = {
    "real": {
        "tau0": [2.0, 3.0, 4.0, 5.0],
        "min_event_s": [0.25, 0.5, 1.0],
    },
    "ceiling": {
        "semantic_ceiling": [0.04, 0.06, 0.1, 10.0],
        "predictive_ceiling": [0.08, 0.12, 0.2, 10.0],
        "motion_ceiling": [0.3, 0.6, 10.0],
        "tau0": [4.0, 5.0],
        "eta": [0.25, 0.5],
    },
    "current": {},
    # The real-footage set (tune on dev, read held-out only for the chosen row): how long the
    # change must last, by how much, and whether the colours must move too.
    "confirm": {
        "confirm_frames": [1, 2, 3],
        "confirm_margin": [0.0, 0.05, 0.1],
        "confirm_colour": [0.0, 0.1, 0.2],
    },
    "colour": {
        "confirm_frames": [2],
        "confirm_margin": [0.1],
        "confirm_colour": [0.0, 0.1, 0.2],
        "confirm_strong": [0.2, 0.3, 2.0],
    },
    # The old default (5) against the one the real-footage dev set chose (7), side by side on
    # the same cached features: the generated set must keep 1.00 and 0 distractor boundaries.
    "tau0": {
        "tau0": [5.0, 7.0],
    },
    "threshold": {
        "tau0": [3.0, 4.0, 5.0, 6.0],
        "min_event_s": [0.5, 1.0],
    },
    # Ablation: does each cue earn its place? (w = 0 removes a cue; lr = 0 freezes the
    # predictor at its initial "nothing changes" state instead of adapting it online.)
    "ablation": {
        "w_predictive": [0.0, 0.5],
        "predictor_lr": [0.0, 0.05],
        "w_motion": [0.0, 0.3],
    },
    "final": {
        "semantic_ceiling": [0.03, 0.04],
        "predictive_ceiling": [0.06, 0.08],
        "min_event_s": [0.5, 1.0],
        "tau0": [4.5, 5.0, 6.0],
        "eta": [0.25],
    },
    "small": {
        "tau0": [3.0, 4.0, 5.0],
        "min_event_s": [1.0, 1.5],
        "w_motion": [0.3],
        "w_predictive": [0.5],
    },
    "full": {
        "tau0": [2.5, 3.0, 3.5, 4.0, 5.0, 6.0],
        "min_event_s": [0.75, 1.0, 1.5],
        "w_motion": [0.0, 0.15, 0.3, 0.5],
        "w_predictive": [0.0, 0.25, 0.5, 1.0],
        "eta": [0.25, 0.5, 1.0],
    },
}


def _describe(category: str, r: dict) -> str:
    if category in DISTRACTORS or category.endswith("single"):
        return f"{category}:fp{r['fp']}"
    if category.endswith(("cuts", "native")):
        return f"{category}:{r['f1@1']:.2f}/{r['f1@0.1']:.2f}"
    return f"{category}:{r['f1@1']:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=Path, default=Path(".bench/videos"))
    parser.add_argument("--config", default="default")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="small")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--cache", type=Path, default=Path(".bench/tune_cache"), help="a dir")
    parser.add_argument(
        "--set", action="append", default=[], help="KEY=VALUE: fix a setting for the sweep"
    )
    parser.add_argument("--no-exact-cuts", action="store_true", help="ablation: sampled times")
    parser.add_argument("--cached-only", action="store_true", help="skip videos not yet encoded")
    args = parser.parse_args()
    videos = encode_all(
        load_set(args.videos), args.cache, args.config, cached_only=args.cached_only
    )
    base = load_settings(args.config).events
    fixed = dict(item.split("=", 1) for item in args.set)
    base = base.model_validate({**base.model_dump(), **fixed})
    grid = GRIDS[args.grid]
    results = []
    combos = list(itertools.product(*grid.values()))
    for values in tqdm(combos, desc="sweep", file=sys.stderr):
        overrides = dict(zip(grid.keys(), values, strict=True))
        settings = base.model_copy(update=overrides)
        report = evaluate(videos, settings, exact_cuts=not args.no_exact_cuts)
        results.append((rank(report), overrides, report))
    results.sort(key=lambda r: r[0], reverse=True)
    for score, overrides, report in results[: args.top]:
        cats = "  ".join(_describe(c, r) for c, r in sorted(report.items()))
        print(f"{score[1]:.3f} {score[2]:.3f} fp={-score[0]:.0f} {overrides}  {cats}")
    current = evaluate(videos, base, exact_cuts=not args.no_exact_cuts)
    print("current profile:", rank(current), json.dumps(current))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
