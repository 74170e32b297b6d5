"""The content check's effect, for ``bench_qa.py``: which phrasings it rejected, and the score
each answer would have had without it.

The content check is the last of ``Answerer.problem``'s checks, so a phrasing rejected for
content passed every other one: without the check it would have been the answer. One run
therefore gives both sides: the answer given (the template) and the phrasing that was held
back, each scored by the same scorer. Captions already in memory are re-checked the same way:
a decoder-written caption that passes every check but the content check would be replaced by
its templated description now.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eventvstream.language import caption_check, prompts, scene
from eventvstream.language.grounding import INVENTED


def ask(ans: Any, question: str, scope: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answer as ``Answerer.answer`` does; also what the decoder said and what the answer would
    have been without the content check (``unguarded``)."""
    plan = ans.plan(question, scope)
    answer = ans.finish(plan, "".join(ans.stream(plan)))
    unguarded = answer
    if plan.rejected and plan.rejected.startswith(INVENTED):
        text = (plan.phrasing or "").strip()
        unguarded = ans.finish(replace(plan, final=text, phrased=True), text)
    info = {
        "asked_decoder": plan.phrasing is not None,
        "phrased": plan.phrased,
        "rejected": plan.rejected,
        "phrasing": plan.phrasing,
        "unguarded": unguarded.to_dict(),
    }
    return answer.to_dict(), info


def recheck_captions(bank: Any, stream: str) -> dict[str, Any]:
    """The stream's stored decoder captions (not the templated ones) against today's checks:
    how many pass, how many fail only the content check (with the words), fail otherwise."""
    out: dict[str, Any] = {"decoder": 0, "pass": 0, "content": 0, "other": 0, "examples": []}
    for row in bank.events(stream=stream):
        caption = row.caption
        if not caption or caption == scene.describe(row):
            continue
        out["decoder"] += 1
        full = caption_check.problem(caption, row, prompts.EXAMPLE_CAPTIONS)
        if full is None:
            out["pass"] += 1
        elif full == INVENTED:
            out["content"] += 1
            out["examples"].append(caption)
        else:
            out["other"] += 1
    return out


def lines(records: list[dict[str, Any]], captions: dict[str, dict[str, Any]]) -> list[str]:
    """The Markdown report of the check's effect, dev and held-out apart."""
    splits = ("dev", "held-out")
    rows: dict[str, list[str]] = {}
    for split in splits:
        mine = [r for r in records if r["split"] == split]
        asked = [r for r in mine if r.get("asked_decoder")]
        content = [r for r in asked if (r.get("rejected") or "").startswith(INVENTED)]
        other = [r for r in asked if r.get("rejected") and r not in content]

        def acc(key: str, group: list[dict[str, Any]] = mine) -> str:
            return f"{sum(r[key] for r in group) / len(group):.2f}" if group else "-"

        rows[split] = [
            str(len(mine)),
            str(len(asked)),
            str(sum(bool(r.get("phrased")) for r in asked)),
            str(len(content)),
            str(len(other)),
            f"{acc('ok_unguarded')} → {acc('ok')}",
            f"{acc('ok_unguarded', content)} → {acc('ok', content)}",
            str(sum(r.get("invented_time_unguarded", False) for r in mine)),
        ]
    names = [
        "questions",
        "phrased by the decoder (asked)",
        "phrasing given (passed every check)",
        "rejected for content (template given)",
        "rejected by the other checks",
        "accuracy without → with the content check",
        "the same, on the content-rejected answers only",
        "answers stating a time not in their evidence, without the check",
    ]
    out = ["| content check | dev | held-out |", "|---|---|---|"]
    out += [
        f"| {name} | {rows['dev'][i]} | {rows['held-out'][i]} |" for i, name in enumerate(names)
    ]
    rejected = [r for r in records if (r.get("rejected") or "").startswith(INVENTED)]
    if rejected:
        out += ["", "Phrasings the content check rejected (the words it named):", ""]
        for r in rejected[:8]:
            words = r["rejected"][len(INVENTED) :].strip(" ()")
            out.append(f"- {r['split']}, {r['q']!r}: {r['phrasing'].strip()[:160]!r} ({words})")
    for split, c in captions.items():
        if c["decoder"]:
            out.append(
                f"- stored decoder captions ({split}): {c['decoder']}; pass every check "
                f"{c['pass']}, fail only the content check {c['content']} "
                f"({'; '.join(repr(e) for e in c['examples'][:4])}), fail another {c['other']}"
            )
    return out
