#!/usr/bin/env python
"""Why does a hard cut miss at 0.1 s? Classify every miss on one part of the real-footage set.

Replays the detector on ``tune_events.py``'s cached features (windows read from the files with
the segmenter's own reader, as in the pipeline), and for every true cut with no boundary within
0.1 s says which step lost it: no boundary within 1 s, the exact-cut window not covering the
cut, ``locate_cut`` finding no cut in a window that does, or picking another frame. Use it on
the **dev** part only when choosing a change::

    EVS_ENCODER__THREADS=1 python scripts/cut_misses.py dev cuts,native [KEY=VALUE ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventvstream.events.placement as placement
import tune_events as te
from eventvstream.config import load_settings
from eventvstream.events import EventDetector
from eventvstream.events.metrics import score_boundaries, total
from eventvstream.events.refine import frame_jumps
from eventvstream.media.window import FrameWindowReader


def main(argv: list[str]) -> int:
    cats = {f"{argv[0]}:{c}" for c in argv[1].split(",")}
    fixed = dict(a.split("=", 1) for a in argv[2:])
    items = [it for it in te.load_set(Path(".bench/real")) if it[1]["category"] in cats]
    videos = te.encode_all(items, Path(".bench/tune_real"), "default")
    base = load_settings("default").events
    settings = base.model_validate({**base.model_dump(), **fixed})
    calls: list[tuple[list, float | None]] = []
    original = placement.locate_cut

    def spy(frames, **kw):
        result = original(frames, **kw)
        calls.append((list(frames), result))
        return result

    placement.locate_cut = spy
    scores: dict[str, list] = {}
    kinds: dict[str, int] = {}
    for v in videos:
        calls.clear()
        grid = tuple(settings.motion_grid)
        detector = EventDetector(settings, frame_window=FrameWindowReader(v.path, grid))
        events = []
        for i in range(len(v.times)):
            events += detector.push(
                float(v.times[i]), int(v.indices[i]), v.features[i], v.images[i]
            )
        events += detector.flush(v.duration)
        pred = [e.start for e in events[1:]]
        fired = {e.opened_by.t: e.opened_by.fired_at for e in events[1:]}
        scores.setdefault(v.category, []).append(score_boundaries(pred, v.truth, 0.1))
        for t in v.truth:
            near = min(pred, key=lambda p, t=t: abs(p - t)) if pred else None
            if near is not None and abs(near - t) <= 0.1:
                continue
            if near is None or abs(near - t) > 1.0:
                kind, info = "no boundary within 1 s", ""
            else:
                covering = [(f, r) for f, r in calls if f and f[0][0] <= t <= f[-1][0] + 0.02]
                info = f"boundary {near:.2f}, fired at {fired.get(near)}"
                if not covering:
                    kind = "window does not cover the cut"
                else:
                    frames, result = covering[-1]
                    jumps = frame_jumps([thumb for _t, thumb in frames])
                    kind = "no cut found" if result is None else "another frame picked"
                    info += (
                        f", window {frames[0][0]:.2f}-{frames[-1][0]:.2f} ({len(frames)} frames),"
                        f" top jumps {np.round(np.sort(jumps)[::-1][:3], 2)}"
                    )
            kinds[kind] = kinds.get(kind, 0) + 1
            print(f"{v.name} {t:.2f}: {kind} {info}")
    for category, parts in sorted(scores.items()):
        s = total(parts)
        print(f"{category}: F1@0.1 {s.f1:.3f} (tp {s.tp}, fp {s.fp}, fn {s.fn})")
    print(kinds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
