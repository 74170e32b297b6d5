"""``evs run`` (video -> events in the memory bank) and ``evs memory stats|search|export``.

Kept apart from ``cli.py`` so each file has one job; ``cli.py`` builds the parser and calls in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from eventvstream.config import Settings, load_settings
from eventvstream.errors import EvsError

_FINGERPRINT_BYTES = 1 << 20


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="segment a video and store its events in the memory bank")
    run.add_argument("video", type=Path)
    _common(run)
    run.add_argument("--stream", help="stream id (default: the file name without extension)")
    run.add_argument("--force", action="store_true", help="re-ingest a file already stored")
    run.add_argument("--json", action="store_true", help="print stored events as JSON lines")
    run.add_argument("--progress", choices=["auto", "on", "off"], default="auto")

    memory = sub.add_parser("memory", help="inspect the memory bank")
    msub = memory.add_subparsers(dest="memory_command", required=True, metavar="ACTION")
    stats = msub.add_parser("stats", help="counts per stream, indexes, database size")
    _common(stats)
    stats.add_argument("--json", action="store_true")
    search = msub.add_parser("search", help="find events by text, similarity or time")
    search.add_argument("text", nargs="?", help="what to look for (omit to list by time)")
    _common(search)
    _scope_args(search)
    search.add_argument("--like", type=int, metavar="EVENT_ID", help="events that look like it")
    search.add_argument("-k", type=int, default=10, help="how many results (default 10)")
    search.add_argument("--json", action="store_true")
    export = msub.add_parser("export", help="every event as JSON lines on stdout")
    _common(export)
    _scope_args(export)
    export.add_argument("--embeddings", action="store_true", help="include visual embeddings")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=None, help="profile name or YAML path")
    parser.add_argument("--data-dir", type=Path, help="memory directory (memory.data_dir)")
    parser.add_argument("--owner", default=None, help="owner of the events (default: none)")


def _scope_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream")
    parser.add_argument("--from", dest="t0", type=float, metavar="SECONDS")
    parser.add_argument("--to", dest="t1", type=float, metavar="SECONDS")


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if args.data_dir is not None:
        memory = settings.memory.model_copy(update={"data_dir": args.data_dir})
        settings = settings.model_copy(update={"memory": memory})
    return settings


def fingerprint(path: Path) -> str:
    """Identifies a file's content cheaply: size + first and last MiB. Re-running ``evs run`` on
    the same file (even renamed) is then recognised and skipped."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:32]


def run(args: argparse.Namespace) -> int:
    from eventvstream.memory import MemoryBank
    from eventvstream.memory.bank import event_values
    from eventvstream.memory.retrieval import describe_labels
    from eventvstream.perception import load_text_embedder
    from eventvstream.pipeline import Segmenter

    settings = _settings(args)
    if not args.video.is_file():
        raise EvsError(f"video not found: {args.video}", code="not_found")
    stream = args.stream or args.video.stem
    owner = args.owner or ""
    source = f"{stream}:{fingerprint(args.video)}"
    progress = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    segmenter = Segmenter(settings)
    embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
    started = time.perf_counter()
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
        count = merged = 0
        for index, event in enumerate(segmenter.segment(args.video, progress=progress)):
            values = event_values(event)
            stored = bank.add(values, stream=stream, owner=owner, source=source, source_index=index)
            text = describe_labels(values["labels"])
            bank.set_text(stored.id, text, embedder.embed([text])[0])
            count += 1
            merged += stored.merged
            if args.json:
                record = {
                    "type": "stored",
                    "id": stored.id,
                    "merged": stored.merged,
                    "start": round(event.start, 3),
                    "end": round(event.end, 3),
                    "text": text,
                }
                print(json.dumps(record), flush=True)
        bank.finish_source(source, count)
        stats = bank.stats()
    elapsed = time.perf_counter() - started
    info = segmenter.last_info
    duration = info.duration if info else 0.0
    print(
        f"stored {count} events ({merged} merged into earlier ones) of {duration:.1f}s of video "
        f"as stream {stream!r} in {elapsed:.1f}s; memory now holds {stats['events']} events "
        f"in {stats['data_dir']}",
        file=sys.stderr,
    )
    return 0


def memory(args: argparse.Namespace) -> int:
    from eventvstream.memory import MemoryBank

    settings = _settings(args)
    with MemoryBank(settings.memory) as bank:
        if args.memory_command == "stats":
            return _stats(bank, args)
        if args.memory_command == "export":
            for record in bank.export(
                stream=args.stream, owner=args.owner, with_embedding=args.embeddings
            ):
                print(json.dumps(record))
            return 0
        return _search(bank, settings, args)


def _stats(bank: Any, args: argparse.Namespace) -> int:
    stats = bank.stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(
        f"{stats['events']} events ({stats['merges']} merges, {stats['captioned']} captioned) "
        f"from {stats['sources']} sources in {stats['data_dir']} "
        f"({stats['db_bytes'] / 2**20:.1f} MiB database, schema v{stats['schema_version']})"
    )
    for name, index in stats["indexes"].items():
        print(f"  index {name}: {index['vectors']} vectors, {index['dim']}-d, {index['kind']}")
    for s in stats["streams"]:
        owner = f" (owner {s['owner']})" if s["owner"] else ""
        print(
            f"  stream {s['stream']}{owner}: {s['events']} events, "
            f"{s['start']:.1f}s - {s['end']:.1f}s, {s['merges']} merges"
        )
    return 0


def _search(bank: Any, settings: Settings, args: argparse.Namespace) -> int:
    from eventvstream.memory.retrieval import Retriever, Scope
    from eventvstream.perception import load_encoder, load_text_embedder

    scope = Scope(args.stream, args.owner, args.t0, args.t1)
    encoder = None
    if args.text and settings.encoder.backend == "open_clip":
        encoder = load_encoder(settings.encoder, settings.device)  # has a text tower
    embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
    retriever = Retriever(bank, embedder, encoder)
    if args.like is not None:
        hits = retriever.similar_to(args.like, k=args.k, scope=scope)
    else:
        hits = retriever.search(args.text, k=args.k, scope=scope)
    for hit in hits:
        row = hit.event
        if args.json:
            print(
                json.dumps({"score": round(hit.score, 4), "matched": hit.source, **row.to_dict()})
            )
        else:
            print(
                f"{hit.score:6.3f}  #{row.id:<6d} {row.stream}  {row.start:8.2f}s - "
                f"{row.end:8.2f}s  {row.caption or row.text or ''}"
            )
    if not hits:
        print("no matching events", file=sys.stderr)
    return 0
