"""Video file -> events: media, perception and the event detector wired together.

The encoder is loaded once and reused across files (the benchmark segments dozens). Decoding
runs ahead in its own process while this thread encodes, so the two overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eventvstream.config import Settings, load_settings
from eventvstream.events import Event, EventDetector
from eventvstream.media import VideoInfo, open_video
from eventvstream.perception import ImageEncoder, load_encoder

log = logging.getLogger(__name__)


class Segmenter:
    """Owns an encoder; segments any number of videos with one settings profile."""

    def __init__(self, settings: Settings | None = None, encoder: ImageEncoder | None = None):
        self.settings = settings or load_settings()
        self.encoder = encoder or load_encoder(self.settings.encoder, self.settings.device)
        self.last_detector: EventDetector | None = None
        self.last_info: VideoInfo | None = None

    def segment(
        self,
        path: str | Path,
        *,
        progress: bool = False,
        trace: bool = False,
        keep_images: bool = False,
        on_info: Callable[[VideoInfo], None] | None = None,
    ) -> Iterator[Event]:
        """Yield events as they close. Raises :class:`~eventvstream.errors.MediaError` for an
        unreadable video — after yielding the events decoded before the damage, if any."""
        sampling = self.settings.sampling
        detector = EventDetector(self.settings.events, seed=self.settings.encoder.seed, trace=trace)
        self.last_detector = detector
        with open_video(
            path,
            fps=sampling.fps,
            short_side=sampling.decode_short_side,
            chunk_frames=sampling.chunk_frames,
            timeout_s=sampling.decode_timeout_s,
        ) as video:
            self.last_info = video.info
            if on_info is not None:
                on_info(video.info)
            bar = tqdm(
                total=video.info.sampled_frames,
                unit="frame",
                desc=Path(path).name[:30],
                disable=not progress,
                leave=False,
            )
            with bar:
                for chunk in video:
                    features = self._encode(chunk.images)
                    for i in range(len(chunk)):
                        for event in detector.push(
                            float(chunk.times[i]),
                            int(chunk.indices[i]),
                            features[i],
                            chunk.images[i],
                        ):
                            yield self._finish(event, keep_images)
                    bar.update(len(chunk))
            for event in detector.flush(video.info.duration):
                yield self._finish(event, keep_images)

    def _encode(self, images: np.ndarray) -> np.ndarray:
        batch = self.settings.encoder.batch_size
        parts = [
            self.encoder.encode_images(images[i : i + batch]) for i in range(0, len(images), batch)
        ]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _finish(self, event: Event, keep_images: bool) -> Event:
        """Label the keyframes (only a few per event, so this is cheap) and drop the pixels."""
        k = self.settings.encoder.top_k_labels
        with_images = [kf for kf in event.keyframes if kf.image is not None]
        if k and with_images and self.encoder.info.has_labels:
            labels = self.encoder.top_labels([kf.image for kf in with_images], k)
            for keyframe, top in zip(with_images, labels, strict=True):
                keyframe.labels = top
        if not keep_images:
            for keyframe in event.keyframes:
                keyframe.image = None
        return event


def segment_file(
    path: str | Path, settings: Settings | None = None, *, progress: bool = False
) -> Iterator[Event]:
    """One-call convenience: load the encoder for ``settings`` and segment ``path``."""
    yield from Segmenter(settings).segment(path, progress=progress)
