"""The streaming event detector: push a frame, maybe get a closed event.

Files and live streams share this one code path. Per informative frame t:

1. cues: semantic s_t (vs. the event's running mean), motion m_t (structure change of a grey
   thumbnail), predictive c_t (error of an online-adapted next-feature predictor);
2. each cue divided by its running typical value, fused: E_t = Σ w·cue;
3. a boundary fires when E_t > τ_t (adaptive on motion variance) and the event would be at
   least ``min_event_s`` long; an event reaching ``max_event_s`` is closed regardless;
4. the boundary time is refined to the centre of change in a short look-back window, and a
   hard cut onto its exact source frame when frames are at hand (:mod:`events.placement`).

Records and event assembly live in :mod:`events.state`; the confirmation test in
:mod:`events.confirm`.

Blank frames (almost no contrast: the dark middle of a fade) carry no meaning; they belong to
the timeline but never fire, never teach the cue statistics and never enter the event mean.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import numpy as np

from eventvstream.config import EventSettings
from eventvstream.events.confirm import change_persists
from eventvstream.events.cues import (
    MotionCue,
    PredictiveCue,
    SemanticCue,
    colour_histogram,
    grey_thumbnail,
)
from eventvstream.events.fusion import AdaptiveThreshold, CueWeights, RunningScale, fuse
from eventvstream.events.placement import centre_of_change, exact_cut
from eventvstream.events.pooling import ImageReservoir
from eventvstream.events.refine import FrameWindow
from eventvstream.events.state import (
    FrameRecord,
    FrameTrace,
    OpenEvent,
    PendingBoundary,
    close_event,
)
from eventvstream.events.types import Boundary, CueScores, Event


class EventDetector:
    """Stateful per-stream detector. Not thread-safe: one per stream.

    A frame that crosses the threshold is held *pending* for the next ``confirm_frames``
    informative frames: if their mean is closer to the pending frame than to the event before
    it (by ``confirm_margin``), the change lasted and the boundary is confirmed; otherwise the
    pending frame was a transient (a flash, a glitch, an animal turning its head) and the event
    goes on. Judging the *mean* of a window after the candidate against the *mean* of the event
    before it is what keeps lively footage quiet: a new pose is one frame away from the next
    pose, but a cut's frames agree with each other. This costs ``confirm_frames`` sampled
    frames of latency.

    ``frame_window``, when given (file input: the segmenter passes a reader), returns every
    source frame's grey thumbnail around a confirmed boundary, so a hard cut is placed on its
    exact frame (:mod:`eventvstream.events.refine`); the detector itself stays I/O-free.
    """

    def __init__(
        self,
        settings: EventSettings,
        *,
        seed: int = 0,
        trace: bool = False,
        frame_window: FrameWindow | None = None,
    ) -> None:
        self.settings = settings
        self.seed = seed
        self.weights = CueWeights(settings.w_semantic, settings.w_motion, settings.w_predictive)
        self.motion = MotionCue(tuple(settings.motion_grid), settings.blank_std)
        self.semantic = SemanticCue(settings.ema_rho)
        self.predictive: PredictiveCue | None = None
        self.scales = {
            cue: RunningScale(
                getattr(settings, f"{cue}_floor"),
                settings.scale_rate,
                getattr(settings, f"{cue}_ceiling"),
            )
            for cue in ("semantic", "motion", "predictive")
        }
        weight_sum = self.weights.semantic + self.weights.motion + self.weights.predictive
        self.threshold = AdaptiveThreshold(
            settings.tau0, settings.eta, settings.variance_window, weight_sum
        )
        self.traces: list[FrameTrace] | None = [] if trace else None
        self.frame_window = frame_window
        self._colours: np.ndarray | None = None  # the open event's mean colour histogram
        self._open: OpenEvent | None = None
        self._pending: PendingBoundary | None = None
        self._recent_images: deque[tuple[int, np.ndarray]] = deque(maxlen=32)
        self._recent_thumbs: deque[tuple[float, np.ndarray]] = deque(maxlen=8)
        self._last_informative: FrameRecord | None = None
        self._last_t = 0.0
        self._frame_step = 0.0
        self._next_index = 0

    # -- public API ----------------------------------------------------------------------------
    def push(
        self, t: float, frame_index: int, feature: np.ndarray, image: np.ndarray
    ) -> list[Event]:
        """Feed one sampled frame (time in seconds, unit feature, RGB image). Returns the events
        this frame closed (zero or one)."""
        feature = np.asarray(feature, dtype=np.float32)
        if self._open is not None and t <= self._last_t:
            raise ValueError(f"frame times must increase: got {t} after {self._last_t}")
        if self._open is not None:
            self._frame_step = t - self._last_t
        self._last_t = t
        self._recent_images.append((frame_index, image))
        thumb = grey_thumbnail(image, self.motion.grid)
        self._recent_thumbs.append((t, thumb))
        frame = FrameRecord(t, frame_index, feature, blank=self.motion.is_blank(thumb))
        frame.colours = colour_histogram(image)

        if self._open is None:  # the very first frame opens the stream's first event
            self._open = self._new_event(Boundary(t, "stream_start"))
            if frame.blank:
                self._append(frame)
            else:
                self._accept(frame, thumb, scores=None)
            return []
        if frame.blank:
            self._append(frame)
            self._trace(frame, None, None)
            return []

        closed = []
        if self._pending is not None:
            self._pending.after.append(frame)
            if len(self._pending.after) >= self.settings.confirm_frames:
                closed = self._resolve_pending()
        if self.predictive is None:
            self.predictive = PredictiveCue(
                feature.shape[0],
                self.settings.predictor_hidden,
                self.settings.predictor_lr,
                self.seed,
            )
        previous = self._last_informative
        frame.prev_t = previous.t if previous is not None else t
        frame.change = 1.0 - float(feature @ previous.feature) if previous is not None else 0.0
        raw = (
            self.semantic.score(feature),
            self.motion.score(thumb),
            self.predictive.score(feature),
        )
        norm = tuple(
            self.scales[name].normalise(value)
            for name, value in zip(("semantic", "motion", "predictive"), raw, strict=True)
        )
        fused = fuse(*norm, self.weights)
        scores = CueScores(*raw, *norm, fused=fused)
        threshold = self.threshold.value()

        if not closed and self._pending is None and fused > threshold:
            boundary_t = self._refine(frame)
            if boundary_t - self._open.start >= self.settings.min_event_s:
                self._append(frame)
                trace = self._trace(frame, scores, threshold)
                boundary = Boundary(boundary_t, "cue", threshold, scores, fired_at=t)
                mean = self.semantic.mean if self.semantic.mean is not None else feature
                colours = self._colours if self._colours is not None else frame.colours
                self._pending = PendingBoundary(frame, thumb, boundary, trace, mean.copy(), colours)
                return closed
        if (
            not closed
            and self._pending is None
            and t - self._open.start >= self.settings.max_event_s
        ):
            self._append(frame)
            closed.append(self._split(Boundary(t, "max_length", threshold, scores, t)))
            self._restart_cues(frame, thumb)
            self._trace(frame, scores, threshold).fired = True
            return closed
        self._accept(frame, thumb, scores=scores, threshold=threshold)
        return closed

    def flush(self, end_time: float | None = None) -> list[Event]:
        """Close the stream: a still-pending boundary is confirmed (nothing contradicts it), and
        the open event ends at ``end_time`` (default: one frame step after the last frame)."""
        if self._open is None or not self._open.frames:
            return []
        closed = []
        if self._pending is not None:  # judged on the frames there are
            pending = self._pending
            if not pending.after or self._persists(pending):
                self._pending = None
                closed.append(self._split(self._exact(pending.boundary)))
                if pending.trace is not None:
                    pending.trace.fired = True
            else:
                self._pending = None
                pending.frame.transient = True
                if pending.trace is not None:
                    pending.trace.transient = True
        end = end_time if end_time is not None else self._last_t + (self._frame_step or 0.0)
        end = max(end, self._open.frames[-1].t)
        closed.append(self._close(self._open, Boundary(end, "end_of_stream")))
        self._open = None
        return closed

    # -- internals -----------------------------------------------------------------------------
    def _persists(self, pending: PendingBoundary) -> bool:
        """Did the change last over the confirmation window? (:mod:`events.confirm`)"""
        return change_persists(
            pending.frame.feature,
            [f.feature for f in pending.after],
            pending.old_mean,
            margin=self.settings.confirm_margin,
            colours_after=[f.colours for f in (pending.frame, *pending.after)],
            colours_before=pending.old_colours,
            colour_min=self.settings.confirm_colour,
            strong=self.settings.confirm_strong,
        )

    def _resolve_pending(self) -> list[Event]:
        """Confirm the pending boundary if the change persisted; otherwise mark the pending
        frame as a transient and go on with the event."""
        assert self._pending is not None and self._open is not None
        pending, self._pending = self._pending, None
        if self._persists(pending):
            event = self._split(self._exact(pending.boundary))
            if self._open.frames and self._open.frames[-1] is not pending.frame:
                # frames after the candidate already moved the motion and prediction context on
                self.semantic.reset([f.feature for f in self._open.frames if f.informative])
                self._reset_colours()
            else:
                self._restart_cues(pending.frame, pending.thumb)
            if pending.trace is not None:
                pending.trace.fired = True
            return [event]
        pending.frame.transient = True
        if pending.trace is not None:
            pending.trace.transient = True
        return []

    def _exact(self, boundary: Boundary) -> Boundary:
        """A hard cut moved onto its exact source frame, when the caller can provide frames."""
        if self.frame_window is None or self._open is None:
            return boundary
        cut = exact_cut(
            self.frame_window,
            centre=boundary.t,
            fired=boundary.fired_at if boundary.fired_at is not None else boundary.t,
            event_start=self._open.start,
            recent=self._recent_thumbs,
            dominance=self.settings.cut_dominance,
            floor=self.settings.cut_floor,
            lookback_s=self.settings.cut_lookback_s,
            radius=self.settings.cut_radius,
        )
        return boundary if cut is None else replace(boundary, t=cut)

    def _restart_cues(self, frame: FrameRecord, thumb: np.ndarray) -> None:
        """After a boundary: the new event's mean comes from its frames so far, and motion and
        prediction continue from the latest frame (without learning across the boundary)."""
        assert self._open is not None
        self.semantic.reset([f.feature for f in self._open.frames if f.informative])
        self._reset_colours()
        self.motion.observe(thumb)
        if self.predictive is not None:
            self.predictive.observe(frame.feature, learn=False)
        self._last_informative = frame

    def _reset_colours(self) -> None:
        assert self._open is not None
        kept = [f.colours for f in self._open.frames if f.colours is not None and not f.blank]
        self._colours = np.mean(kept, axis=0) if kept else None

    def _new_event(self, opened_by: Boundary) -> OpenEvent:
        return OpenEvent(opened_by, ImageReservoir(self.settings.retained_images))

    def _append(self, frame: FrameRecord) -> None:
        assert self._open is not None
        position = len(self._open.frames)
        self._open.frames.append(frame)
        image = self._image_for(frame.index)
        if image is not None:
            self._open.reservoir.offer(position, image)

    def _accept(
        self,
        frame: FrameRecord,
        thumb: np.ndarray,
        *,
        scores: CueScores | None,
        threshold: float | None = None,
    ) -> None:
        """An ordinary in-event frame: it joins the event and teaches the running statistics."""
        if scores is not None:
            self.scales["semantic"].update(scores.semantic)
            self.scales["motion"].update(scores.motion)
            self.scales["predictive"].update(scores.predictive)
            self.threshold.observe_motion(scores.motion_norm)
        self.motion.observe(thumb)
        self.semantic.absorb(frame.feature)
        if frame.colours is not None:
            rate = self.settings.ema_rho
            self._colours = (
                frame.colours.copy()
                if self._colours is None
                else (1 - rate) * self._colours + rate * frame.colours
            )
        if self.predictive is not None:
            self.predictive.observe(frame.feature, learn=True)
        self._last_informative = frame
        self._append(frame)
        self._trace(frame, scores, threshold)

    def _refine(self, frame: FrameRecord) -> float:
        assert self._open is not None
        return centre_of_change(
            self._open.frames, frame, self._open.start, self.settings.refine_lookback_s
        )

    def _split(self, boundary: Boundary) -> Event:
        """Close the open event at ``boundary.t``; its frames at or after that time start the
        next event."""
        assert self._open is not None
        old = self._open
        keep = [f for f in old.frames if f.t < boundary.t]
        moved = [f for f in old.frames if f.t >= boundary.t]
        if not keep:  # never leave an empty event behind: the boundary moves to the 2nd frame
            keep, moved = old.frames[:1], old.frames[1:]
            boundary = replace(boundary, t=moved[0].t if moved else boundary.t)
        old.frames = keep
        old.reservoir.items = [item for item in old.reservoir.items if item[0] < len(keep)]
        event = self._close(old, boundary)
        self._open = self._new_event(boundary)
        for moved_frame in moved:
            self._append(moved_frame)
        return event

    def _close(self, open_event: OpenEvent, closed_by: Boundary) -> Event:
        event = close_event(open_event, closed_by, self._next_index, self.settings)
        self._next_index += 1
        return event

    def _image_for(self, frame_index: int) -> np.ndarray | None:
        for index, image in reversed(self._recent_images):
            if index == frame_index:
                return image
        return None

    def _trace(
        self, frame: FrameRecord, scores: CueScores | None, threshold: float | None
    ) -> FrameTrace:
        record = FrameTrace(frame.t, frame.blank, scores, threshold)
        if self.traces is not None:
            self.traces.append(record)
        return record
