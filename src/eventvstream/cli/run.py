"""``evs run VIDEO``: segment, store, caption, report.

``evs run`` wires the whole pipeline: frames are decoded and encoded, events are cut, and each
event goes through the one ingest step (:mod:`eventvstream.pipeline.ingest`: stored in the memory
bank the moment it closes, described, captioned by the caption worker's own thread with a bounded
queue, so generation never holds up ingest). This command is one more ingest listener: it prints
JSON lines and remembers what the report needs. At the end the remaining captions are drained and
a timeline report (JSON, Markdown, HTML with keyframe thumbnails) is written.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.cli.common import (
    Subparsers,
    common_args,
    fingerprint,
    positive_float,
    progress_arg,
    settings_from_args,
    video_source,
    want_progress,
)
from eventvstream.pipeline.ingest import BaseListener, CaptionDone, StoredEvent


def add_parser(sub: Subparsers) -> None:
    run = sub.add_parser(
        "run", help="segment, caption and store a video in memory; write a timeline report"
    )
    run.add_argument(
        "video",
        help="a video file, or a live source: rtsp://, rtmp://, http(s):// (HLS .m3u8, MJPEG, a "
        "file), /dev/videoN (see docs/cameras.md)",
    )
    run.add_argument(
        "--until",
        type=positive_float,
        metavar="S",
        help="live sources: stop after S seconds (Ctrl-C too)",
    )
    run.add_argument(
        "--transport", choices=["tcp", "udp"], default="tcp", help="RTSP transport (default tcp)"
    )
    common_args(run)
    run.add_argument("--stream", help="stream id (default: the file name without extension)")
    run.add_argument("--force", action="store_true", help="re-ingest a file already stored")
    run.add_argument("--json", action="store_true", help="print events and captions as JSON lines")
    progress_arg(run, "progress bars on stderr (auto: only on a terminal)")
    run.add_argument("--no-captions", action="store_true", help="store events without captions")
    run.add_argument(
        "--trigger", choices=["event", "interval", "frame"], help="language.trigger policy"
    )
    run.add_argument("--interval", type=positive_float, metavar="S", help="language.interval_s")
    run.add_argument(
        "--report", type=Path, help="report directory (default: <data_dir>/reports/<stream>)"
    )


class RunListener(BaseListener):
    """Prints ``--json`` lines and keeps the report's entries (ingest and caption threads)."""

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.entries: dict[int, dict[str, Any]] = {}
        self.count = self.merged = 0
        self._lock = threading.Lock()

    def _emit(self, record: dict[str, Any]) -> None:
        if self.json_lines:
            with self._lock:
                print(json.dumps(record), flush=True)

    def event_stored(self, event: StoredEvent) -> None:
        detected = event.event
        images = [k.image for k in detected.keyframes if k.image is not None]
        _remember(self.entries, event.id, detected, images, event.merged)
        self.count += 1
        self.merged += event.merged
        self._emit(
            {
                "type": "stored",
                "id": event.id,
                "merged": event.merged,
                "start": round(detected.start, 3),
                "end": round(detected.end, 3),
                "text": event.text,
            }
        )

    def event_merged(self, event: StoredEvent) -> None:
        self.event_stored(event)

    def caption_done(self, caption: CaptionDone) -> None:
        entry = self.entries.get(caption.event.id)
        if entry is not None:
            entry["caption"] = caption.caption
            entry["caption_latency_s"] = caption.latency_s
        self._emit(
            {
                "type": "caption",
                "id": caption.event.id,
                "caption": caption.caption,
                "fallback": caption.fallback,
                "latency_s": round(caption.latency_s, 3),
                "decode_s": round(caption.decode_s, 3),
            }
        )


def main(args: argparse.Namespace) -> int:
    from eventvstream.language import load_decoder
    from eventvstream.memory import MemoryBank
    from eventvstream.perception import load_text_embedder
    from eventvstream.pipeline import Segmenter
    from eventvstream.pipeline.ingest import Ingest

    video = video_source(args.video, live=True)
    language: dict[str, Any] = {}
    if args.trigger:
        language["trigger"] = args.trigger
    if args.interval is not None:
        language["interval_s"] = args.interval
    if args.no_captions:
        language["backend"] = "none"
    settings = settings_from_args(args, language=language)
    owner = args.owner or ""
    progress = want_progress(args.progress)
    live = _live_source(args, settings) if isinstance(video, str) else None
    target: Path | Any = live
    if live is not None:
        shown = live.name  # never the credentials: not in memory, the report or the log
        stream = args.stream or _stream_name(args.video)
        source = f"{stream}:live:{time.strftime('%Y%m%dT%H%M%S')}"
        progress = False  # no known length
    else:
        target = video
        shown = str(target)
        stream = args.stream or target.stem
        source = f"{stream}:{fingerprint(target)}"
    segmenter = Segmenter(settings)
    embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
    decoder = load_decoder(settings)
    started = time.perf_counter()
    listener = RunListener(args.json)

    with MemoryBank(settings.memory, visual_dim=segmenter.encoder.info.dim) as bank:
        if args.force:
            bank.forget_source(source)
        if not bank.begin_source(source, stream=stream, owner=owner, path=shown):
            print(
                f"evs: {shown} is already in memory as stream {stream!r} "
                "(use --force to re-ingest)",
                file=sys.stderr,
            )
            return 0
        ingest = Ingest(bank, embedder, decoder, settings.language, (listener,))
        worker = ingest.captioner
        try:
            if live is not None:
                signal.signal(signal.SIGINT, _interrupt(live))
                print(f"evs: reading {shown} (Ctrl-C to stop)", file=sys.stderr)
            result = segmenter.segment(target, progress=progress, keep_images=True)
            for index, event in enumerate(result):
                # a camera's events say when they happened: t = 0 is its first frame's arrival
                began = live.status()["started_at"] if live is not None else None
                ingest.store(
                    event,
                    stream=stream,
                    owner=owner,
                    source=source,
                    source_index=index,
                    wall_start=None if began is None else began + event.start,
                )
            if worker is not None:
                _drain(worker, progress)
        finally:
            ingest.close(drain=False)
            if live is not None:
                live.close()
                signal.signal(signal.SIGINT, signal.default_int_handler)
        bank.finish_source(source, listener.count)
        stats = bank.stats()
    elapsed = time.perf_counter() - started
    duration = result.info.duration if result.info else 0.0
    report_dir = args.report or Path(settings.memory.data_dir).expanduser() / "reports" / stream
    paths = _write_report(
        report_dir, shown, stream, settings, duration, elapsed, listener.entries, worker
    )
    captions = worker.stats.captioned if worker is not None else 0
    print(
        f"stored {listener.count} events ({listener.merged} merged into earlier ones, "
        f"{captions} captions) of {duration:.1f}s of video as stream {stream!r} in "
        f"{elapsed:.1f}s ({duration / max(elapsed, 1e-9):.1f}x real time); memory now holds "
        f"{stats['events']} events in {stats['data_dir']}\nreport: {paths['html']}",
        file=sys.stderr,
    )
    return 0


def _live_source(args: argparse.Namespace, settings: Any) -> Any:
    from eventvstream.media.live import LiveSource

    return LiveSource(
        args.video,
        fps=settings.sampling.fps,
        short_side=settings.sampling.decode_short_side,
        transport=args.transport,
        until_s=args.until,
        on_state=_say_state,
    )


def _interrupt(live: Any) -> Any:
    """Ctrl-C on a live source: finish cleanly (store what was read, write the report), or,
    before its first frame, stop at once: the segmenter would wait for that frame forever."""

    def handler(*_: object) -> None:
        live.stop()
        if live.info is None:
            raise KeyboardInterrupt

    return handler


def _say_state(status: dict[str, Any]) -> None:
    """A live source's state changes on stderr: a camera that does not answer says so (and
    that it keeps retrying) instead of leaving the user with silence."""
    state = status["state"]
    if state in ("connecting", "stopped"):  # every retry begins "connecting"; Ctrl-C is known
        return
    error = status["last_error"] if state in ("reconnecting", "failed") else None
    detail = f" ({error})" if error else ""
    print(f"evs: {status['source']}: {state}{detail}", file=sys.stderr, flush=True)


def _stream_name(url: str) -> str:
    """A stream id without secrets: ``rtsp://u:p@10.0.0.5/cam1`` -> ``10.0.0.5-cam1``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    raw = f"{parts.hostname or ''}{parts.path}" if "://" in url else url
    name = "-".join(p for p in re.split(r"[^A-Za-z0-9_.]+", raw) if p)
    return name[:64] or "live"


def _remember(
    entries: dict[int, dict[str, Any]],
    event_id: int,
    event: Any,
    images: list[np.ndarray],
    merged: bool,
) -> None:
    """What the report needs of an event, with thumbnails kept as small JPEG bytes (a long
    video has thousands of events; raw keyframes would not fit in memory)."""
    from eventvstream.pipeline.report import encode_thumbnail

    thumbs = [(k.t, encode_thumbnail(k.image)) for k in event.keyframes if k.image is not None]
    entry = entries.get(event_id)
    if entry is None or not merged:
        entries[event_id] = {
            "start": event.start,
            "end": event.end,
            "labels": event.labels[:5],
            "boundary": event.closed_by.to_dict(),
            "merged": merged,
            "thumbs": thumbs,
            "caption": None,
            "caption_latency_s": None,
        }
    else:  # merged into the slot: widen it
        entry["end"] = event.end
        entry["merged"] = True
        entry["boundary"] = event.closed_by.to_dict()
        entry["thumbs"] = (entry["thumbs"] + thumbs)[:6]


def _drain(worker: Any, progress: bool) -> None:
    """Wait for the captions still queued, with a progress bar on a terminal."""
    from tqdm import tqdm

    total = worker.pending
    with tqdm(
        total=total, unit="caption", desc="captions", disable=not progress, leave=False
    ) as bar:
        while worker.pending:
            time.sleep(0.1)
            bar.n = total - worker.pending
            bar.refresh()
    worker.close(drain=True)


def _write_report(
    out: Path,
    video: str,
    stream: str,
    settings: Any,
    duration: float,
    elapsed: float,
    entries: dict[int, dict[str, Any]],
    worker: Any,
) -> dict[str, Path]:
    from eventvstream.pipeline.report import TimelineEntry, write_report

    timeline = []
    for event_id, e in sorted(entries.items(), key=lambda item: item[1]["start"]):
        keyframes = [(t, data) for t, data in e["thumbs"]]
        timeline.append(
            TimelineEntry(
                event_id,
                e["start"],
                e["end"],
                e["caption"],
                [(str(n), float(p)) for n, p in e["labels"]],
                e["merged"],
                e["boundary"],
                keyframes,
                e["caption_latency_s"],
            )
        )
    extra: dict[str, Any] = {
        "trigger": settings.language.trigger,
        "decoder": settings.language.backend,
    }
    if worker is not None:
        stats = worker.stats
        lat = np.array(stats.latencies) if stats.latencies else np.zeros(1)
        extra |= {
            "decoder_calls": stats.captioned + stats.failed,
            "captions_skipped": stats.skipped,
            "captions_failed": stats.failed,
            "captions_retried": stats.retries,
            "captions_replaced": stats.fallbacks,
            "captions_rejected": dict(stats.rejected),
            "decode_s": stats.decode_s,
            "caption_latency_p50_s": float(np.percentile(lat, 50)),
            "caption_latency_p95_s": float(np.percentile(lat, 95)),
        }
    return write_report(
        out,
        video=str(video),
        stream=stream,
        profile=settings.profile,
        duration_s=duration,
        elapsed_s=elapsed,
        entries=timeline,
        extra=extra,
    )
