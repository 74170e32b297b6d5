"""``evs memory stats|search|export``, and the argument helpers ``evs run``/``query`` share.

Kept apart from ``cli.py`` so each file has one job; ``cli.py`` builds the parser and calls in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from eventvstream.config import Settings, load_settings

_FINGERPRINT_BYTES = 1 << 20


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    memory = sub.add_parser("memory", help="inspect the memory bank")
    msub = memory.add_subparsers(dest="memory_command", required=True, metavar="ACTION")
    stats = msub.add_parser("stats", help="counts per stream, indexes, database size")
    common_args(stats)
    stats.add_argument("--json", action="store_true")
    search = msub.add_parser("search", help="find events by text, similarity or time")
    search.add_argument("text", nargs="?", help="what to look for (omit to list by time)")
    common_args(search)
    scope_args(search)
    search.add_argument("--like", type=int, metavar="EVENT_ID", help="events that look like it")
    search.add_argument("-k", type=int, default=10, help="how many results (default 10)")
    search.add_argument("--json", action="store_true")
    export = msub.add_parser("export", help="every event as JSON lines on stdout")
    common_args(export)
    scope_args(export)
    export.add_argument("--embeddings", action="store_true", help="include visual embeddings")


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=None, help="profile name or YAML path")
    parser.add_argument("--data-dir", type=Path, help="memory directory (memory.data_dir)")
    parser.add_argument("--owner", default=None, help="owner of the events (default: none)")


def scope_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream")
    parser.add_argument("--from", dest="t0", type=float, metavar="SECONDS")
    parser.add_argument("--to", dest="t1", type=float, metavar="SECONDS")


def settings_from_args(
    args: argparse.Namespace, *, language: dict[str, Any] | None = None
) -> Settings:
    """The profile named by ``--config`` with ``--data-dir`` and any language overrides."""
    settings = load_settings(args.config)
    if args.data_dir is not None:
        memory = settings.memory.model_copy(update={"data_dir": args.data_dir})
        settings = settings.model_copy(update={"memory": memory})
    if language:
        updated = settings.language.model_validate(settings.language.model_dump() | language)
        settings = settings.model_copy(update={"language": updated})
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


def memory(args: argparse.Namespace) -> int:
    from eventvstream.memory import MemoryBank

    settings = settings_from_args(args)
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
