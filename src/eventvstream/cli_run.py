"""The main job: ``evs run VIDEO`` (segment, caption, store, report) and ``evs query``.

``evs run`` wires the whole pipeline: frames are decoded and encoded, events are cut, each event
is stored in the memory bank the moment it closes, and a caption worker (its own thread, bounded
queue) runs the decoder on it, so generation never holds up ingest. At the end the remaining
captions are drained and a timeline report (JSON, Markdown, HTML with keyframe thumbnails) is
written. ``evs query`` answers a question from the persistent memory, streaming tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.cli_memory import common_args, fingerprint, scope_args, settings_from_args
from eventvstream.errors import EvsError


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser(
        "run", help="segment, caption and store a video in memory; write a timeline report"
    )
    run.add_argument("video", type=Path)
    common_args(run)
    run.add_argument("--stream", help="stream id (default: the file name without extension)")
    run.add_argument("--force", action="store_true", help="re-ingest a file already stored")
    run.add_argument("--json", action="store_true", help="print events and captions as JSON lines")
    run.add_argument("--progress", choices=["auto", "on", "off"], default="auto")
    run.add_argument("--no-captions", action="store_true", help="store events without captions")
    run.add_argument(
        "--trigger", choices=["event", "interval", "frame"], help="language.trigger policy"
    )
    run.add_argument("--interval", type=float, metavar="S", help="language.interval_s")
    run.add_argument(
        "--report", type=Path, help="report directory (default: <data_dir>/reports/<stream>)"
    )

    query = sub.add_parser("query", help="answer a question from memory, citing events")
    query.add_argument("question")
    common_args(query)
    scope_args(query)
    query.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    query.add_argument(
        "--no-generate", action="store_true", help="answer from the cited events, no decoder"
    )


# -- evs run -----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from eventvstream.language import load_decoder
    from eventvstream.memory import MemoryBank
    from eventvstream.memory.bank import event_values
    from eventvstream.memory.retrieval import describe_labels
    from eventvstream.perception import load_text_embedder
    from eventvstream.pipeline import Segmenter
    from eventvstream.pipeline.captioner import CaptionJob, CaptionResult, CaptionWorker

    language: dict[str, Any] = {}
    if args.trigger:
        language["trigger"] = args.trigger
    if args.interval is not None:
        language["interval_s"] = args.interval
    if args.no_captions:
        language["backend"] = "none"
    settings = settings_from_args(args, language=language)
    if not args.video.is_file():
        raise EvsError(f"video not found: {args.video}", code="not_found")
    stream = args.stream or args.video.stem
    owner = args.owner or ""
    source = f"{stream}:{fingerprint(args.video)}"
    progress = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    segmenter = Segmenter(settings)
    embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
    decoder = load_decoder(settings)
    started = time.perf_counter()
    entries: dict[int, dict[str, Any]] = {}
    emit_lock = __import__("threading").Lock()

    def emit(record: dict[str, Any]) -> None:
        if args.json:
            with emit_lock:
                print(json.dumps(record), flush=True)

    def on_caption(result: CaptionResult) -> None:
        entry = entries.get(result.job.event_id)
        if entry is not None:
            entry["caption"] = result.caption
            entry["caption_latency_s"] = result.latency_s
        emit(
            {
                "type": "caption",
                "id": result.job.event_id,
                "caption": result.caption,
                "fallback": result.fallback,
                "latency_s": round(result.latency_s, 3),
                "decode_s": round(result.decode_s, 3),
            }
        )

    with MemoryBank(settings.memory, visual_dim=segmenter.encoder.info.dim) as bank:
        if args.force:
            bank.forget_source(source)
        if not bank.begin_source(source, stream=stream, owner=owner, path=str(args.video)):
            print(
                f"evs: {args.video} is already in memory as stream {stream!r} "
                "(use --force to re-ingest)",
                file=sys.stderr,
            )
            return 0
        worker = (
            CaptionWorker(bank, decoder, embedder, settings.language, on_caption=on_caption)
            if decoder is not None
            else None
        )
        count = merged = 0
        try:
            events = segmenter.segment(args.video, progress=progress, keep_images=True)
            for index, event in enumerate(events):
                values = event_values(event)
                stored = bank.add(
                    values, stream=stream, owner=owner, source=source, source_index=index
                )
                text = describe_labels(values["labels"])
                if not stored.merged:  # a merged slot keeps its text until its new caption
                    bank.set_text(stored.id, text, embedder.embed([text])[0])
                images = [k.image for k in event.keyframes if k.image is not None]
                _remember(entries, stored.id, event, images, stored.merged)
                count += 1
                merged += stored.merged
                emit(
                    {
                        "type": "stored",
                        "id": stored.id,
                        "merged": stored.merged,
                        "start": round(event.start, 3),
                        "end": round(event.end, 3),
                        "text": text,
                    }
                )
                if worker is not None:
                    worker.submit(CaptionJob(stored.id, images))
            if worker is not None:
                _drain(worker, progress)
        finally:
            if worker is not None:
                worker.close(drain=False)
        bank.finish_source(source, count)
        stats = bank.stats()
    elapsed = time.perf_counter() - started
    info = segmenter.last_info
    duration = info.duration if info else 0.0
    report_dir = args.report or Path(settings.memory.data_dir).expanduser() / "reports" / stream
    paths = _write_report(
        report_dir, args.video, stream, settings, duration, elapsed, entries, worker
    )
    captions = worker.stats.captioned if worker is not None else 0
    print(
        f"stored {count} events ({merged} merged into earlier ones, {captions} captions) of "
        f"{duration:.1f}s of video as stream {stream!r} in {elapsed:.1f}s "
        f"({duration / max(elapsed, 1e-9):.1f}x real time); memory now holds {stats['events']} "
        f"events in {stats['data_dir']}\nreport: {paths['html']}",
        file=sys.stderr,
    )
    return 0


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
    video: Path,
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


# -- evs query ---------------------------------------------------------------------------------
def query(args: argparse.Namespace) -> int:
    from eventvstream.language import load_decoder
    from eventvstream.language.qa import Answerer
    from eventvstream.memory import MemoryBank
    from eventvstream.memory.retrieval import Retriever, Scope
    from eventvstream.perception import load_encoder, load_text_embedder

    settings = settings_from_args(args)
    scope = Scope(args.stream, args.owner, args.t0, args.t1)
    with MemoryBank(settings.memory) as bank:
        encoder = None
        if settings.encoder.backend == "open_clip":
            encoder = load_encoder(settings.encoder, settings.device)  # has a text tower
        embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
        decoder = None if args.no_generate else load_decoder(settings)
        answerer = Answerer(bank, Retriever(bank, embedder, encoder), decoder, settings.language)
        try:
            plan = answerer.plan(args.question, scope)
        except ValueError as exc:
            raise EvsError(str(exc), code="bad_request") from None
        parts = []
        for delta in answerer.stream(plan):
            parts.append(delta)
            if not args.json:
                sys.stdout.write(delta)
                sys.stdout.flush()
        answer = answerer.finish(plan, "".join(parts))
    if args.json:
        print(json.dumps(answer.to_dict()))
        return 0
    if not "".join(parts).strip():
        sys.stdout.write(answer.text)
    print()
    if answer.citations:
        print("\nevents:")
        for c in answer.citations:
            print(
                f"  [#{c['id']}] {c['stream']}  {c['start']:.1f}s - {c['end']:.1f}s  "
                f"{c['caption'] or ''}"
            )
    return 0
