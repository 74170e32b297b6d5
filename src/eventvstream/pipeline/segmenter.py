"""Video file -> events: media, perception and the event detector wired together.

The encoder is loaded once and reused across files (the benchmark segments dozens). Decoding
runs ahead in its own process while this thread encodes, so the two overlap.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eventvstream.config import Settings, load_settings
from eventvstream.events import Event, EventDetector
from eventvstream.events.types import KEYFRAME_LABELS
from eventvstream.media import VideoInfo, VideoStream, open_video
from eventvstream.media.live import LiveSource
from eventvstream.media.window import FrameWindowReader
from eventvstream.perception import ImageEncoder, load_encoder
from eventvstream.perception.appearance import camera_motion, look_of
from eventvstream.perception.devices import resolve_device
from eventvstream.pipeline.resources import plan_cpu
from eventvstream.pipeline.triggers import UnitMaker, make_unit_maker

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Segmentation:
    """What :meth:`Segmenter.segment` returns (like faster-whisper's ``(segments, info)``):
    iterate it for events as they close; ``info`` is the video's info once it is open (after
    the first ``next``; the measured values once iteration ends), ``detector`` the event
    detector of this run (its per-frame ``traces`` with ``trace=True``; None under the
    interval/frame trigger policies)."""

    detector: EventDetector | None
    info: VideoInfo | None = None
    _events: Iterator[Event] = field(default_factory=lambda: iter(()), repr=False)

    def __iter__(self) -> Segmentation:
        return self

    def __next__(self) -> Event:
        return next(self._events)


class Segmenter:
    """Owns an encoder; segments any number of videos with one settings profile."""

    def __init__(self, settings: Settings | None = None, encoder: ImageEncoder | None = None):
        settings = settings or load_settings()
        on_cpu = resolve_device(settings.device).type == "cpu"
        self.cpu_plan = plan_cpu(settings, encoder_on_cpu=on_cpu)
        if self.cpu_plan.encoder_threads is not None:
            encoder_settings = settings.encoder.model_copy(
                update={"threads": self.cpu_plan.encoder_threads}
            )
            settings = settings.model_copy(update={"encoder": encoder_settings})
        self.settings = settings
        self.encoder = encoder or load_encoder(settings.encoder, settings.device)

    def segment(
        self,
        path: str | Path | LiveSource,
        *,
        progress: bool = False,
        trace: bool = False,
        keep_images: bool = False,
        on_info: Callable[[VideoInfo], None] | None = None,
    ) -> Segmentation:
        """Events as they close, in a :class:`Segmentation`. Iterating raises
        :class:`~eventvstream.errors.MediaError` for an unreadable video — after the events
        decoded before the damage, if any. ``on_info`` is called once the video is open.

        ``path`` may also be a :class:`~eventvstream.media.live.LiveSource` (``evs run URL``):
        its frames arrive one at a time until it ends, fails, is closed or reaches its
        ``until_s``; the caller owns it (and can close it to stop)."""
        detector = make_unit_maker(self.settings, trace=trace)
        result = Segmentation(detector if isinstance(detector, EventDetector) else None)
        result._events = self._events(path, detector, result, progress, keep_images, on_info)
        return result

    def _events(
        self,
        path: str | Path | LiveSource,
        detector: UnitMaker,
        result: Segmentation,
        progress: bool,
        keep_images: bool,
        on_info: Callable[[VideoInfo], None] | None,
    ) -> Iterator[Event]:
        sampling = self.settings.sampling
        frame_labels: dict[int, list[tuple[str, float]]] = {}
        if isinstance(path, LiveSource):
            opened: VideoStream | LiveSource = path.start()
            path.wait_ready()
            name = path.name
        else:
            opened = open_video(
                path,
                fps=sampling.fps,
                short_side=sampling.decode_short_side,
                chunk_frames=sampling.chunk_frames,
                timeout_s=sampling.decode_timeout_s,
                threads=self.cpu_plan.decode_threads,
                reader=sampling.reader,
            )
            name = Path(path).name
        live = isinstance(path, LiveSource)
        with opened as video, self._frame_window(None if live else path, detector) as window:
            assert video.info is not None
            if window is not None and isinstance(detector, EventDetector):
                detector.frame_window = window  # hard cuts land on their exact frame
            result.info = video.info
            if on_info is not None:
                on_info(video.info)
            bar = tqdm(
                total=video.info.sampled_frames,
                unit="frame",
                desc=name[:30],
                disable=not progress,
                leave=False,
            )
            with bar:
                for chunk in video:
                    features, labels = self._encode(chunk.images)
                    for i in range(len(chunk)):
                        index = int(chunk.indices[i])
                        frame_labels[index] = labels[i]
                        closed = detector.push(
                            float(chunk.times[i]), index, features[i], chunk.images[i]
                        )
                        for event in closed:
                            yield self.attach_labels(event, frame_labels, keep_images)
                    bar.update(len(chunk))
            result.info = info = video.info  # measured at the end (PyAV reader, live)
            assert info is not None
            for event in detector.flush(info.duration):
                yield self.attach_labels(event, frame_labels, keep_images)

    @contextlib.contextmanager
    def _frame_window(
        self, path: str | Path | None, detector: object
    ) -> Iterator[FrameWindowReader | None]:
        """A reader of every frame around a boundary, for files (not for live sources or the
        fixed chunker, and not when ``events.exact_cuts`` is off); None if the file cannot be
        opened that way."""
        reader = None
        if (
            path is not None
            and self.settings.events.exact_cuts
            and isinstance(detector, EventDetector)
        ):
            try:
                reader = FrameWindowReader(path, self.settings.events.motion_grid)
            except Exception as exc:  # refinement is optional: keep the sampled-rate boundaries
                log.warning("no exact cut placement for %s: %s", Path(path).name, exc)
        try:
            yield reader
        finally:
            if reader is not None:
                reader.close()

    def _encode(self, images: np.ndarray) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Features and top-k labels of every frame, from one forward pass per batch."""
        k = self.settings.encoder.top_k_labels if self.encoder.info.has_labels else 0
        batch = self.settings.encoder.batch_size
        features, labels = [], []
        for start in range(0, len(images), batch):
            part = images[start : start + batch]
            if k:
                feats, top = self.encoder.encode_and_label(part, k)
            else:
                feats, top = self.encoder.encode_images(part), [[] for _ in range(len(part))]
            features.append(feats)
            labels.extend(top)
        return np.concatenate(features), labels

    @staticmethod
    def attach_labels(
        event: Event, frame_labels: dict[int, list[tuple[str, float]]], keep_images: bool
    ) -> Event:
        """Pool the labels of every frame of the event, describe how its keyframes look, and
        drop the pixels unless asked to keep them.

        Events close in order and cover consecutive frames, so the event's frames are the
        ``frame_count`` oldest ones still waiting in ``frame_labels``; they (and anything up to
        the last keyframe) are forgotten afterwards. Pooling all frames rather than three
        keyframes' top labels is what lets a thing seen for a few seconds be named at all.
        """
        pending = sorted(frame_labels)
        last = max((kf.frame_index for kf in event.keyframes), default=-1)
        frames = pending[: event.frame_count] if event.frame_count else []
        frames = frames or [i for i in pending if i <= last]
        event.pooled_labels = pool_labels([frame_labels[i] for i in frames])
        previous = None
        for keyframe in event.keyframes:
            keyframe.labels = frame_labels.get(keyframe.frame_index, [])[:KEYFRAME_LABELS]
            if keyframe.image is not None:
                keyframe.look = look_of(keyframe.image)
                if previous is not None:
                    keyframe.look["camera"] = camera_motion(previous, keyframe.image)
                previous = keyframe.image
            if not keep_images:
                keyframe.image = None
        cutoff = max(last, frames[-1] if frames else -1)
        for index in [i for i in pending if i <= cutoff]:
            del frame_labels[index]
        return event


def pool_labels(frames: list[list[tuple[str, float]]], limit: int = 20) -> list[tuple[str, float]]:
    """Mean probability of each label over the frames (absent = 0), most likely first."""
    totals: dict[str, float] = {}
    for labels in frames:
        for name, p in labels:
            totals[name] = totals.get(name, 0.0) + p
    count = max(1, len(frames))
    pooled = sorted(((n, p / count) for n, p in totals.items()), key=lambda item: -item[1])
    return pooled[:limit]


def segment_file(
    path: str | Path, settings: Settings | None = None, *, progress: bool = False
) -> Iterator[Event]:
    """One-call convenience: load the encoder for ``settings`` and segment ``path``."""
    yield from Segmenter(settings).segment(path, progress=progress)
