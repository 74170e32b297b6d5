#!/usr/bin/env python
"""Event-segmentation benchmark: accuracy per category, speed, 720p throughput and long-video
memory, for our segmenter and the peer detectors, in one run.

Needs the set from ``scripts/make_bench_videos.py``. Prints Markdown (for docs/benchmarks.md) on
stdout, progress on stderr, and everything with ``--json``::

    python scripts/bench_segment.py --json .bench/results.json
    python scripts/bench_segment.py --only cuts,real --skip-peers
    python scripts/bench_segment.py --long        # adds the 2-hour peak-memory run

Why these measures: a boundary is right if it lands within a tolerance of a true one (one-to-one,
``eventvstream.events.metrics``); categories are micro-averaged (summed tp/fp/fn) so long clips
weigh more. Distractor clips have no true boundary, so the only number there is how many a
method invents. Every method is warmed up once (models loaded, file cache hot) before timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eventvstream.events.metrics import score_boundaries, total

sys.path.insert(0, str(Path(__file__).resolve().parent))  # peers.py sits next to this file

TOLERANCES = (0.1, 0.5, 1.0)  # 0.1 s: within a few source frames, reported for hard cuts
DISTRACTORS = ("pan", "zoom", "flicker", "noise")
HARD_CUTS = ("cuts", "cuts_720p", "real", "native")  # categories whose every boundary is a cut
Method = Callable[[str], list[float]]
DECODE = "decode-only"  # the floor: our decoder alone, same sampling, no boundaries
PEER_NAMES = ("pyscenedetect-content", "pyscenedetect-adaptive", "transnetv2")


def no_boundary(category: str) -> bool:
    """Clips whose truth is 'no boundary': the generated distractors, real single shots."""
    return category in DISTRACTORS or category.endswith(":single")


def hard_cuts(category: str) -> bool:
    return category.split(":")[-1] in HARD_CUTS


class PeerCache:
    """Peers' predictions and timings per (method, file content), kept in a JSON file.

    The peers do not change while we work on our detector, and on a shared 2-core machine
    TransNetV2 alone needs most of an hour for the real-footage set; with ``--peer-cache`` each
    peer runs once per file and later runs reuse its boundaries *and* its measured seconds.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path is not None and path.is_file():
            self.data = json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def key(name: str, file: Path) -> str:
        import hashlib

        return f"{name}:{hashlib.sha1(file.read_bytes()).hexdigest()}"

    def get(self, name: str, file: Path) -> tuple[list[float], float, str | None] | None:
        hit = self.data.get(self.key(name, file)) if self.path else None
        return (hit["predicted"], hit["seconds"], None) if hit else None

    def put(self, name: str, file: Path, result: tuple[list[float], float, str | None]) -> None:
        if self.path is None or result[2] is not None:
            return
        self.data[self.key(name, file)] = {"predicted": result[0], "seconds": result[1]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data) + "\n", encoding="utf-8")


def _proc(path: str, key: str) -> str | None:
    """The value of ``key: value`` in a /proc file (None off Linux)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(key)), None)


def machine() -> dict[str, Any]:
    mem = _proc("/proc/meminfo", "MemTotal")
    info: dict[str, Any] = {
        "cpu": _proc("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "ram_gib": round(int(mem.split()[0]) / 2**20, 1) if mem else None,
        "cores_usable": len(os.sched_getaffinity(0)),
        "cores_host": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],  # other work on the box skews every timing
        "python": sys.version.split()[0],
    }
    with contextlib.suppress(ImportError):
        import torch

        info["torch"], info["torch_threads"] = torch.__version__, torch.get_num_threads()
    return info


def load_ours(settings: Any) -> tuple[Method | None, dict[str, Any]]:
    """Our segmenter as ``fn(path) -> boundaries``, or None and why it is not available."""
    try:
        from eventvstream.pipeline import Segmenter

        t0 = time.perf_counter()
        segmenter = Segmenter(settings)  # encoder loaded once and reused, like TransNetV2's
        load_s = time.perf_counter() - t0
    except Exception as exc:
        return None, {"available": False, "reason": f"{type(exc).__name__}: {exc}"}

    def ours(path: str) -> list[float]:
        events = list(segmenter.segment(path))
        return [float(e.start) for e in events[1:]]

    return ours, {"available": True, "profile": settings.profile, "load_s": load_s}


def load_decode_only(settings: Any, threads: int | None = None) -> Method:
    """Decoding alone, with the segmenter's sampling and reader and every core: the floor.

    Every frame of a compressed stream must be decoded to sample any of it, so no segmenter
    that reads the file itself can beat this; ours' time over it is its overhead. ``threads``
    other than every core gives the decoder the share the segmenter gives it (a diagnostic).
    """
    from eventvstream.media import open_video
    from eventvstream.pipeline.resources import available_cores

    sampling = settings.sampling
    threads = threads or available_cores()

    def decode_only(path: str) -> list[float]:
        with open_video(
            path,
            fps=sampling.fps,
            short_side=sampling.decode_short_side,
            chunk_frames=sampling.chunk_frames,
            threads=threads,
            reader=sampling.reader,
        ) as stream:
            for _chunk in stream:
                pass
        return []

    return decode_only


def _timed(fn: Method, path: str) -> tuple[list[float], float, str | None]:
    t0 = time.perf_counter()
    try:
        bounds = sorted(float(b) for b in fn(path))
        return bounds, time.perf_counter() - t0, None
    except Exception as exc:  # one broken method/video must not sink the whole run
        return [], time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def evaluate(
    videos: list[dict[str, Any]],
    methods: dict[str, Method],
    cache: PeerCache | None = None,
    partial: Path | None = None,
) -> list[dict]:
    """Every method on every video; ``video['root']`` is the directory of its manifest. With
    ``partial``, the rows so far are written there after each video (a long run on a busy
    machine still leaves numbers behind)."""
    shortest = min(videos, key=lambda v: v["duration"])
    for fn in methods.values():  # warm-up, untimed
        _timed(fn, str(shortest["root"] / shortest["video"]))
    rows = []
    bar = tqdm(total=len(videos) * len(methods), desc="benchmark", unit="run", file=sys.stderr)
    for video in videos:
        root = video["root"]
        truth = json.loads((root / video["truth"]).read_text(encoding="utf-8"))["boundaries"]
        category = (
            f"{video['part']}:{video['category']}" if video.get("part") else video["category"]
        )
        for name, fn in methods.items():
            bar.set_postfix_str(f"{name} {video['video']}")
            file = root / video["video"]
            cached = cache.get(name, file) if cache and name in PEER_NAMES else None
            pred, seconds, error = cached or _timed(fn, str(file))
            if cache and name in PEER_NAMES and cached is None:
                cache.put(name, file, (pred, seconds, error))
            row = {"video": video["video"], "category": category, "method": name}
            row.update(duration=video["duration"], frames=video["frames"], seconds=seconds)
            row.update(truth=len(truth), predicted=pred, error=error)
            row["scores"] = {str(t): score_boundaries(pred, truth, t).to_dict() for t in TOLERANCES}
            rows.append(row)
            bar.update()
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(rows) + "\n", encoding="utf-8")
    bar.close()
    return rows


def aggregate(rows: list[dict]) -> list[dict]:
    """Micro-averaged scores and summed timings per (category, method)."""
    from eventvstream.events.metrics import BoundaryScore

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["category"], r["method"]), []).append(r)
    out = []
    for (category, method), rs in groups.items():
        ok = [r for r in rs if r["error"] is None]
        entry: dict[str, Any] = {"category": category, "method": method, "videos": len(rs)}
        entry.update(errors=len(rs) - len(ok), truth=sum(r["truth"] for r in ok))
        entry.update(predicted=sum(len(r["predicted"]) for r in ok))
        entry.update(minutes=sum(r["duration"] for r in ok) / 60)
        entry.update(seconds=sum(r["seconds"] for r in ok), frames=sum(r["frames"] for r in ok))
        for t in TOLERANCES:
            parts = [r["scores"][str(t)] for r in ok]
            fields = ("tolerance", "tp", "fp", "fn")
            score = total(BoundaryScore(*(p[f] for f in fields)) for p in parts)
            entry[f"@{t}"] = score.to_dict() if score else None
        out.append(entry)
    return out


def throughput(
    root: Path,
    entry: dict[str, Any] | None,
    settings: Any,
    ours: Method | None,
    rows: list[dict],
    pairs: int = 0,
) -> dict[str, Any]:
    """Ours end to end vs decode-only with the same sampling, on the 720p clip.

    The ratio says how much of ours is decoding: near 1 means the model is not the bottleneck.
    With ``pairs``, the two are timed alternately (decode, ours, ours, decode, ...) that many
    times and the median of the per-pair ratios is reported: on a machine shared with other
    work the load drifts over minutes, and only measurements taken side by side compare.
    """
    if entry is None:
        return {"reason": "no throughput clip in the manifest"}
    video = entry["video"]
    path = str(root / video)
    result: dict[str, Any] = {
        "video": video,
        "duration": entry["duration"],
        "frames": entry["frames"],
        "fps": settings.sampling.fps,
        "short_side": settings.sampling.decode_short_side,
    }
    decode = load_decode_only(settings)
    if pairs > 0 and ours is not None:
        from eventvstream.perception.devices import resolve_device
        from eventvstream.pipeline.resources import plan_cpu

        # Ours' decoder runs on its share of the cores; timing that share alone says how much
        # of ours' time is its own decoder (the critical path) and how much the rest adds.
        plan = plan_cpu(settings, encoder_on_cpu=resolve_device(settings.device).type == "cpu")
        result["ours_decode_threads"] = plan.decode_threads
        methods = {"decode": decode, "ours": ours}
        methods["share"] = load_decode_only(settings, plan.decode_threads)
        timed: list[tuple[float, float]] = []
        shares: list[float] = []
        for i in range(pairs):
            order = ("decode", "ours", "share") if i % 2 == 0 else ("share", "ours", "decode")
            seconds: dict[str, float] = {}
            for name in order:
                _pred, sec, error = _timed(methods[name], path)
                if error is not None:
                    result[name] = error
                    return result
                seconds[name] = sec
            timed.append((seconds["decode"], seconds["ours"]))
            shares.append(seconds["share"])
        fractions = sorted(d / o for d, o in timed)
        result["share_s"] = sorted(shares)[len(shares) // 2]
        result["ours_over_share"] = sorted(o / s for (_, o), s in zip(timed, shares, strict=True))[
            len(shares) // 2
        ]
        result["pairs"] = [{"decode_s": d, "ours_s": o} for d, o in timed]
        result["decode_s"] = sorted(d for d, _ in timed)[len(timed) // 2]
        result["ours_s"] = sorted(o for _, o in timed)[len(timed) // 2]
        result["fraction"] = fractions[len(fractions) // 2]  # median decode_s / ours_s
        result["fraction_range"] = (fractions[0], fractions[-1])
        result["ratio"] = 1 / result["fraction"]
        return result
    done = [r for r in rows if r["video"] == video and r["method"] == "ours" and not r["error"]]
    if done:
        result["ours_s"] = done[0]["seconds"]
    elif ours is not None:
        _pred, seconds_, error = _timed(ours, path)
        result.update({"ours_s": seconds_} if error is None else {"ours": error})
    _pred, decode_s, error = _timed(decode, path)
    if error is None:
        result["decode_s"] = decode_s
    else:
        result["decode"] = f"not available: {error}"
    if "ours_s" in result and "decode_s" in result:
        result["ratio"] = result["ours_s"] / result["decode_s"]
        result["fraction"] = result["decode_s"] / result["ours_s"]
    return result


def long_memory(root: Path, entry: dict[str, Any] | None, config: str | None) -> dict[str, Any]:
    """Run ours on the long video in a child process; peak RSS of the whole process tree."""
    if entry is None or not (root / entry["video"]).is_file():
        return {"available": False, "reason": "no long video; run make_bench_videos.py --long"}
    cmd = [sys.executable, __file__, "--child-segment", str(root / entry["video"])]
    cmd += ["--config", config] if config else []
    try:
        import psutil
    except ImportError:
        psutil = None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak, timeline, last_mark = 0, [], -1e9
    watched = psutil.Process(proc.pid) if psutil else None
    while proc.poll() is None:
        if watched is not None:
            try:
                tree = [watched, *watched.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                rss = 0
            peak = max(peak, rss)
            now = time.perf_counter() - t0
            if now - last_mark >= 10:
                timeline.append((round(now, 1), round(rss / 2**20, 1)))
                last_mark = now
        time.sleep(0.25)
    out = proc.stdout.read() if proc.stdout else ""
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "video": entry["video"],
        "duration": entry["duration"],
        "wall_s": wall,
        "returncode": proc.returncode,
        "peak_tree_rss_mib": round(peak / 2**20, 1) if psutil else None,
        "rss_timeline_mib": timeline,
    }
    try:
        child = json.loads(out.strip().splitlines()[-1])
        truth = json.loads((root / entry["truth"]).read_text(encoding="utf-8"))["boundaries"]
        result.update(events=child["events"], child_maxrss_mib=child["maxrss_mib"])
        result["scores"] = {
            str(t): score_boundaries(child["boundaries"], truth, t).to_dict() for t in TOLERANCES
        }
    except (ValueError, IndexError, KeyError) as exc:
        result["error"] = f"child produced no result: {exc}"
    return result


def child_segment(path: str, config: str | None) -> int:
    from eventvstream.config import load_settings
    from eventvstream.pipeline import segment_file

    events = list(segment_file(path, load_settings(config)))
    # getrusage high-water marks (KiB on Linux): this process, and its largest finished child
    # (the decode worker), as a cross-check on the parent's sampled process-tree RSS.
    rss = {
        k: resource.getrusage(getattr(resource, f"RUSAGE_{k.upper()}")).ru_maxrss / 1024
        for k in ("self", "children")
    }
    bounds = [e.start for e in events[1:]]
    print(json.dumps({"events": len(events), "boundaries": bounds, "maxrss_mib": rss}))
    return 0


def _f(x: float | None, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _table(title: str, header: str, rows: list[list[Any]]) -> list[str]:
    """A Markdown table; ``header`` is '|'-separated, first column left-aligned, rest right."""
    cols = header.split("|")
    left = 2 if cols[1] == "Method" else 1  # names left-aligned, numbers right-aligned
    left = 2 if cols[:2] == ["Part", "Method"] else left
    lines = ["", f"### {title}", "", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * left + "--:|" * (len(cols) - left))
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _part(category: str) -> str:
    return category.split(":")[0] if ":" in category else "generated"


def _speed(rows: list[dict]) -> list[str]:
    """Wall time per method and part, and decode-only's time on the same files over it."""
    ok = [r for r in rows if r["error"] is None]
    decode = {r["video"]: r["seconds"] for r in ok if r["method"] == DECODE}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in ok:
        groups.setdefault((_part(r["category"]), r["method"]), []).append(r)
    table = []
    for (part, name), rs in sorted(groups.items()):
        d, fr, sec = (sum(r[k] for r in rs) for k in ("duration", "frames", "seconds"))
        floor = [decode[r["video"]] for r in rs if r["video"] in decode]
        ratio = sum(floor) / sec if len(floor) == len(rs) and sec else None
        row = [part, name, len(rs), _f(d / 60, 1), fr, _f(sec, 1), _f(fr / sec, 0)]
        table.append([*row, _f(d / sec, 1), _f(ratio)])
    if not table:
        return []
    head = "Part|Method|Videos|Video min|Source frames|Wall s|Source frames/s|× real time"
    head += "|Decode-only s / wall s"
    title = "Speed (wall clock, decoding included; same files, same run)"
    return _table(title, head, table)


def markdown(report: dict[str, Any]) -> str:
    m, ours = report["machine"], report["ours"]
    lines = [
        f"Machine: {m.get('cpu')}, {m['cores_usable']} usable cores (host {m['cores_host']}), "
        f"{m.get('ram_gib', '?')} GiB RAM; Python {m['python']}, torch {m.get('torch', '–')} "
        f"({m.get('torch_threads', '?')} threads). {report['date']}, commit {report['commit']}. "
        f"Load average (1 min) at start {m['load_avg_1m']:.2f}, at end {report['load_end']:.2f}.",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Peers: {report.get('peers', '?')}.",
        "",
        f"Ours: profile `{ours.get('profile')}`, encoder loaded once in {_f(ours.get('load_s'))} s"
        if ours.get("available")
        else f"Ours: not available ({ours.get('reason')})",
    ]
    agg, rows = report["aggregate"], report["rows"]
    agg = [a for a in agg if a["method"] != DECODE]
    acc = [a for a in agg if not no_boundary(a["category"])]
    if acc:
        table = [
            [a["category"], a["method"], a["videos"], a["truth"], a["predicted"]]
            + [_f((a["@1.0"] or {}).get(k)) for k in ("precision", "recall", "f1")]
            + [_f((a["@0.5"] or {}).get("f1"))]
            + [_f((a["@0.1"] or {}).get("f1")) if hard_cuts(a["category"]) else "–"]
            for a in acc
        ]
        head = "Category|Method|Videos|True|Pred|P@1.0|R@1.0|F1@1.0|F1@0.5|F1@0.1 (hard cuts)"
        lines += _table("Boundary accuracy (micro-averaged per category)", head, table)
    dis = [a for a in agg if no_boundary(a["category"])]
    if dis:
        table = [
            [a["category"], a["method"], a["videos"], _f(a["minutes"], 1), a["predicted"], rate]
            for a in dis
            for rate in [_f(a["predicted"] / a["minutes"] if a["minutes"] else None)]
        ]
        head = "Category|Method|Videos|Minutes|Boundaries predicted|Per minute"
        title = "Distractors and real single shots (no true boundary)"
        lines += _table(title, head, table)
    real = [
        [r["video"], r["method"], r["truth"], len(r["predicted"])]
        + [_f(r["scores"][str(t)]["f1"]) for t in TOLERANCES]
        for r in rows
        if r["category"] == "real"
    ]
    if real:
        lines += _table(
            "Real clips (hand-checked cuts)", "Video|Method|True|Pred|F1@0.1|F1@0.5|F1@1.0", real
        )
    lines += _speed(rows)
    tp = report.get("throughput")
    if tp:
        measures = [
            ("decode only (open_video, same sampling)", "decode_s"),
            (f"decode only on ours' {tp.get('ours_decode_threads')} decoder thread(s)", "share_s"),
            ("ours", "ours_s"),
        ]
        table = [
            [label, _f(tp[k]), _f(tp["frames"] / tp[k], 0), _f(tp["duration"] / tp[k], 1)]
            for label, k in measures
            if k in tp and tp.get("duration")
        ]
        title = f"Throughput on {tp.get('video')} (1280x720 @ 30 fps, 60 s)"
        lines += _table(title, "Measure|Wall s|Source frames/s|× real time", table)
        if "ratio" in tp:
            lines.append(
                f"\nOurs end to end takes {tp['ratio']:.2f}× the decode-only time, "
                f"**{tp['fraction']:.2f} of decode-only throughput** "
                f"(sampling {tp['fps']} fps, short side {tp['short_side']})."
            )
        if tp.get("pairs"):
            low, high = tp["fraction_range"]
            each = ", ".join(f"{p['decode_s']:.2f}/{p['ours_s']:.2f}" for p in tp["pairs"])
            lines.append(
                f"Timed alternately, {len(tp['pairs'])} pairs (decode-only s / ours s: {each}); "
                f"median of the per-pair ratios, range {low:.2f}–{high:.2f}."
            )
        if "ours_over_share" in tp:
            lines.append(
                f"Ours takes {tp['ours_over_share']:.2f}× its own decoder's time alone "
                f"({tp['ours_decode_threads']} thread(s), the rest of the cores encoding): "
                "near 1 means ours is as fast as its share of the decoder allows."
            )
        lines += [f"\n{k}: {tp[k]}" for k in ("decode", "reason") if k in tp]
    mem = report.get("long")
    if mem and mem.get("available") is False:
        lines += ["", "### Memory on a long video", "", f"Not run: {mem['reason']}"]
    elif mem:
        tl = mem.get("rss_timeline_mib") or [(0, None)]
        first = next((x for x in tl if x[0] >= 60), tl[-1])  # after start-up: 1 min in
        f1 = (mem.get("scores") or {}).get("1.0", {}).get("f1")
        row = [mem["video"], f"{mem['duration'] / 3600:.2f}", _f(mem["wall_s"], 0)]
        row += [_f(mem["duration"] / mem["wall_s"], 1), _f(mem["peak_tree_rss_mib"], 0)]
        child = mem.get("child_maxrss_mib") or {}
        row += [f"{_f(child.get('self'), 0)} / {_f(child.get('children'), 0)}"]
        row += [f"{_f(first[1], 0)} → {_f(tl[-1][1], 0)}"]
        row += [mem.get("events", "–"), _f(f1)]
        head = "Video|Hours|Wall s|× real time|Peak RSS, process tree (MiB)"
        head += "|Max RSS main / decoder (MiB)|RSS at 1 min → end (MiB)|Events|F1@1.0"
        lines += _table("Memory on a long video (ours, separate process)", head, [row])
    errors = [f"{r['method']} on {r['video']}: {r['error']}" for r in rows if r["error"]]
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, help="settings profile or YAML (default: default)")
    ap.add_argument(
        "--videos",
        type=Path,
        action="append",
        help="dir with manifest.json; repeat for several sets (default: .bench/videos)",
    )
    ap.add_argument("--only", default=None, help="comma-separated categories to run")
    ap.add_argument("--parts", default=None, help="real set: dev,heldout (default: both)")
    ap.add_argument(
        "--peer-cache",
        type=Path,
        default=None,
        help="reuse peers' results from this JSON file (default: every peer runs fresh here)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... another copy of ours with event settings changed (ablation "
        "in the same run), e.g. tau7:tau0=7",
    )
    ap.add_argument("--skip-decode", action="store_true", help="no decode-only floor per file")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--long", action="store_true", help="peak memory on the long video too")
    ap.add_argument("--json", type=Path, default=None, help="write the full results here")
    ap.add_argument(
        "--throughput-pairs",
        type=int,
        default=0,
        help="720p throughput: time ours and decode-only alternately N times (loaded machines)",
    )
    ap.add_argument("--child-segment", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_segment:
        return child_segment(args.child_segment, args.config)

    host = machine()  # before the run, so the load average shows what else was running
    manifests = {}
    videos = []
    for root in args.videos or [Path(".bench/videos")]:
        manifests[root] = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        videos += [{**v, "root": root} for v in manifests[root]["videos"]]
    if args.only:
        wanted = set(args.only.split(","))
        videos = [v for v in videos if v["category"] in wanted]
    if args.parts:
        order = args.parts.split(",")  # in the order given: the part that matters most first
        videos = [v for v in videos if v.get("part", "") in order or "part" not in v]
        videos.sort(key=lambda v: order.index(v["part"]) if v.get("part") in order else -1)
    methods: dict[str, Method] = {}
    ours_fn, ours_info = None, {"available": False, "reason": "--skip-ours"}
    try:  # for the decode-only measurement even when ours is skipped
        from eventvstream.config import load_settings

        settings = load_settings(args.config)
    except Exception as exc:
        settings, ours_info = None, {"available": False, "reason": f"settings: {exc}"}
    if not args.skip_ours and settings is not None:
        ours_fn, ours_info = load_ours(settings)
        if ours_fn is not None:
            methods["ours"] = ours_fn
    for spec in args.variant if settings is not None and not args.skip_ours else []:
        name, _, pairs = spec.partition(":")
        events = settings.events.model_dump()
        events.update(dict(pair.split("=", 1) for pair in pairs.split(",") if pair))
        changed = settings.model_copy(update={"events": type(settings.events)(**events)})
        variant_fn, _info = load_ours(changed)
        if variant_fn is not None:
            methods[f"ours-{name}"] = variant_fn
            ours_info.setdefault("variants", {})[name] = pairs
    if not args.skip_decode and settings is not None and (methods or not args.skip_peers):
        methods[DECODE] = load_decode_only(settings)
    if not args.skip_peers:
        import peers

        peers.warm_up()
        methods.update(peers.PEERS)
    cache = PeerCache(args.peer_cache)
    partial = args.json.with_suffix(".partial.json") if args.json else None
    rows = evaluate(videos, methods, cache, partial) if videos and methods else []
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    report: dict[str, Any] = {
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": host,
        "ours": ours_info,
        "peers": "skipped"
        if args.skip_peers
        else (f"joined from the cache {args.peer_cache}" if args.peer_cache else "run fresh"),
        "rows": rows,
        "aggregate": aggregate(rows),
    }
    # The throughput clip and the long video belong to the generated set's manifest.
    root, manifest = next(
        ((r, m) for r, m in manifests.items() if m.get("throughput")), next(iter(manifests.items()))
    )
    if manifest.get("throughput") and (not args.only or "cuts_720p" in args.only.split(",")):
        entry = next(
            (v for v in manifest["videos"] if v["video"] == manifest.get("throughput")), None
        )
        report["throughput"] = throughput(
            root, entry, settings, ours_fn, rows, args.throughput_pairs
        )
    if args.long:
        if ours_fn is None:
            report["long"] = {"available": False, "reason": "ours is not available"}
        else:
            print("long-video memory run ...", file=sys.stderr)
            report["long"] = long_memory(root, manifest.get("long"), args.config)
    report["load_end"] = os.getloadavg()[0]
    sys.stdout.write(markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
