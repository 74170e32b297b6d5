"""The synthetic benchmark videos decode, have the promised length, and change where the
ground truth says they do.

The truth is the contract the whole benchmark rests on, so it is checked against the rendered
pixels, not against the generator's own arithmetic: a cut must be the biggest frame-to-frame
jump, a dissolve's midpoint must be halfway between its two photos, and the middle of a fade
must be the middle of the black.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage")
decord = pytest.importorskip("decord")

from eventvstream import testdata  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

W, H, FPS = 160, 90, 10.0


def _render(spec: testdata.ClipSpec, tmp_path: Path) -> tuple[np.ndarray, dict]:
    path = tmp_path / f"{spec.category}.mp4"
    truth = testdata.render_clip(spec, path, W, H, FPS, truth_path=tmp_path / "truth.json")
    vr = decord.VideoReader(str(path))
    assert vr.get_avg_fps() == pytest.approx(FPS)
    assert (tmp_path / "truth.json").is_file()
    frames = vr.get_batch(list(range(len(vr)))).asnumpy().astype(np.float32)
    return frames, truth


def _check_length(frames: np.ndarray, truth: dict, spec: testdata.ClipSpec) -> None:
    assert frames.shape[1:] == (H, W, 3)
    assert len(frames) == truth["frames"] == round(spec.duration * FPS)
    assert truth["duration"] == pytest.approx(len(frames) / FPS)
    assert len(truth["boundaries"]) == len(spec.shots) - 1 == 2
    assert all(0 < t < truth["duration"] for t in truth["boundaries"])


def _centred_diff(frames: np.ndarray, w: int) -> np.ndarray:
    """d[i] = mean |F[i + w//2] - F[i - (w - w//2)]|: peaks at the middle of a w-frame change."""
    d = np.full(len(frames), -1.0)
    lo, hi = w - w // 2, w // 2
    d[lo : len(frames) - hi] = np.abs(frames[w:] - frames[:-w]).mean(axis=(1, 2, 3))
    return d


def test_cuts_peak_at_the_truth(tmp_path: Path) -> None:
    spec = testdata.cuts_clip(3, n_shots=3, shot_s=(2.0, 3.0))
    frames, truth = _render(spec, tmp_path)
    _check_length(frames, truth, spec)
    d = _centred_diff(frames, 1)  # d[i] = |F[i] - F[i-1]|: a cut at frame i
    top = sorted(np.argsort(d)[-2:])
    for t, peak in zip(truth["boundaries"], top, strict=True):
        assert abs(peak - t * FPS) <= 1
    assert d[top].min() > 5 * np.median(d[d >= 0]), "cuts must stand out from the camera drift"


def test_dissolves_are_half_way_at_the_truth(tmp_path: Path) -> None:
    spec = testdata.dissolves_clip(4, n_shots=3, shot_s=(2.5, 3.0), dissolve_s=1.0)
    frames, truth = _render(spec, tmp_path)
    _check_length(frames, truth, spec)
    span = round(1.0 * FPS)
    d = _centred_diff(frames, span)
    for t in truth["boundaries"]:
        k = round(t * FPS)
        window = range(k - span // 2, k + span // 2 + 1)
        assert abs(max(window, key=lambda i: d[i]) - k) <= 1
        # Project the middle frame on the line between the photos just outside the dissolve.
        a, b = frames[k - span // 2 - 1], frames[k + span // 2 + 1]
        alpha = float(((frames[k] - a) * (b - a)).sum() / ((b - a) ** 2).sum())
        assert 0.3 < alpha < 0.7


def test_fades_are_black_at_the_truth(tmp_path: Path) -> None:
    spec = testdata.fades_clip(5, n_shots=3, shot_s=(2.0, 3.0), fade_s=1.0)
    frames, truth = _render(spec, tmp_path)
    _check_length(frames, truth, spec)
    brightness = frames.mean(axis=(1, 2, 3))
    dark = brightness < 4
    for t in truth["boundaries"]:
        k = round(t * FPS)
        assert dark[k], f"frame {k} at a fade's middle is not black ({brightness[k]:.1f})"
        lo, hi = k, k
        while dark[lo - 1]:
            lo -= 1
        while dark[hi + 1]:
            hi += 1
        assert abs((lo + hi) / 2 - k) <= 1
        assert min(brightness[k - 8], brightness[k + 8]) > brightness[k] + 5  # photos each side


def test_shots_are_never_frozen(tmp_path: Path) -> None:
    spec = replace(testdata.cuts_clip(6, n_shots=2, shot_s=(2.0, 2.0)), noise_sigma=0.0)
    frames, _ = _render(spec, tmp_path)
    first, last = frames[0], frames[round(1.9 * FPS)]
    assert np.abs(first - last).mean() > 1.0, "the Ken-Burns drift must move the picture"


def test_distractors_have_no_boundaries_and_render() -> None:
    for category in testdata.DISTRACTOR_CATEGORIES:
        spec = testdata.BUILDERS[category](1)
        truth = testdata.ground_truth(spec, 25.0, "x.mp4")
        assert truth["boundaries"] == [] and truth["category"] == category
        assert 20.0 <= truth["duration"] <= 30.0
        assert spec == testdata.BUILDERS[category](1), "builders must be deterministic"
        short = testdata.BUILDERS[category](1, duration_s=0.5)
        frames = list(testdata.iter_frames(short, W, H, FPS))
        assert len(frames) == 5 and frames[0].shape == (H, W, 3)


def test_missing_ffmpeg_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testdata.render.shutil, "which", lambda name: None)
    with pytest.raises(testdata.FFmpegNotFoundError, match="ffmpeg not found"):
        testdata.render_clip(testdata.cuts_clip(0, n_shots=2), tmp_path / "x.mp4", W, H, FPS)
