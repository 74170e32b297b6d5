"""``evs query QUESTION``: answer a question from the persistent memory, streaming tokens."""

from __future__ import annotations

import argparse
import json
import sys

from eventvstream.cli.common import Subparsers, common_args, scope_args, settings_from_args
from eventvstream.errors import EvsError


def add_parser(sub: Subparsers) -> None:
    query = sub.add_parser("query", help="answer a question from memory, citing events")
    query.add_argument("question")
    common_args(query)
    scope_args(query)
    query.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    query.add_argument(
        "--no-generate", action="store_true", help="answer from the cited events, no decoder"
    )


def main(args: argparse.Namespace) -> int:
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
