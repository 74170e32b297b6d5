"""``evs memory stats|search|export``: inspect the memory bank."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from eventvstream.cli.common import (
    Subparsers,
    common_args,
    positive_int,
    require_events,
    require_memory,
    scope_args,
    settings_from_args,
)
from eventvstream.config import Settings
from eventvstream.errors import EvsError


def add_parser(sub: Subparsers) -> None:
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
    search.add_argument("-k", type=positive_int, default=10, help="how many results (default 10)")
    search.add_argument("--json", action="store_true")
    export = msub.add_parser("export", help="every event as JSON lines on stdout")
    common_args(export)
    scope_args(export)
    export.add_argument("--embeddings", action="store_true", help="include visual embeddings")


def main(args: argparse.Namespace) -> int:
    from eventvstream.memory import MemoryBank

    settings = settings_from_args(args)
    require_memory(settings)
    with MemoryBank(settings.memory) as bank:
        if args.memory_command == "stats":
            return _stats(bank, args)  # counts: zero events is an answer here
        require_events(bank, settings)
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
        if bank.get(args.like) is None:
            raise EvsError(f"no event #{args.like} in memory", code="not_found")
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
