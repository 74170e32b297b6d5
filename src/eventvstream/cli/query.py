"""``evs query QUESTION``: answer a question from the persistent memory, citing its events.

The answer arrives whole (``Answerer.stream`` checks a decoder's phrasing before any of it is
shown), so it is printed once, then the events it cites with their times.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from eventvstream.cli.common import (
    Subparsers,
    common_args,
    require_events,
    require_memory,
    scope_args,
    settings_from_args,
)
from eventvstream.errors import EvsError

if TYPE_CHECKING:
    from eventvstream.language.grounding import Times


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
    from eventvstream.language.grounding import Times
    from eventvstream.language.qa import Answerer
    from eventvstream.language.wallclock import Clock
    from eventvstream.memory import MemoryBank
    from eventvstream.memory.retrieval import Retriever, Scope
    from eventvstream.perception import load_encoder, load_text_embedder

    settings = settings_from_args(args)
    require_memory(settings)
    scope = Scope(args.stream, args.owner, args.t0, args.t1)
    with MemoryBank(settings.memory) as bank:
        require_events(bank, settings)
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
        answer = answerer.finish(plan, "".join(answerer.stream(plan)))
    if args.json:
        print(json.dumps(answer.to_dict()))
        return 0
    print(answer.text)
    if answer.citations:
        print("\nevents:")
        times = Times(Clock.named(settings.language.timezone))
        for line in cited_lines(answer.text, answer.citations, times):
            print(line)
    return 0


def cited_lines(text: str, citations: list[dict[str, Any]], times: Times) -> list[str]:
    """One line per cited event: id, stream and when (as the answer writes times), then its
    caption only when the answer does not already say it. A summary's timeline quotes every
    caption; listing them again under it printed the whole summary twice."""
    from eventvstream.language.grounding import Span

    lines = []
    for c in citations:
        when = times.of(Span(c["start"], c["end"], c.get("wall_start")))
        caption = c.get("caption") or ""
        shown = f": {caption}" if caption and caption not in text else ""
        lines.append(f"  [#{c['id']}] {c['stream']}, {when}{shown}")
    return lines
