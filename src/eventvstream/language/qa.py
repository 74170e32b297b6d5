"""Questions about the past, answered from memory with cited events.

Retrieval decides *which* events answer a question; the decoder only phrases the answer. That
split keeps citations honest: every cited id is an event that exists in the asker's scope, with
its real start and end, whatever the model writes. When nothing in memory is relevant (text
similarity below ``language.relevance_threshold``), the answer says so without calling the
decoder at all, so a small model has no chance to invent one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from eventvstream.config import LanguageSettings
from eventvstream.language import prompts
from eventvstream.language.base import Decoder, GenerationRequest
from eventvstream.language.intent import Intent, parse
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.retrieval import Retriever, Scope
from eventvstream.memory.rows import EventRow


@dataclass
class AnswerPlan:
    question: str
    intent: Intent
    events: list[EventRow]  # the evidence, in time order
    relevance: dict[int, float] = field(default_factory=dict)
    request: GenerationRequest | None = None  # None: the answer is ``fixed`` (no decoder call)
    fixed: str | None = None


@dataclass
class Answer:
    text: str
    intent: str
    citations: list[dict[str, Any]]
    grounded: bool  # False: memory had nothing relevant

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent,
            "citations": self.citations,
            "grounded": self.grounded,
        }


def citation(row: EventRow, score: float | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "stream": row.stream,
        "start": round(row.start, 3),
        "end": round(row.end, 3),
        "caption": row.caption,
        **({"relevance": round(score, 4)} if score is not None else {}),
    }


class Answerer:
    def __init__(
        self,
        bank: MemoryBank,
        retriever: Retriever,
        decoder: Decoder | None,
        settings: LanguageSettings,
    ) -> None:
        self.bank = bank
        self.retriever = retriever
        self.decoder = decoder
        self.settings = settings

    # -- planning: pure retrieval, no decoder ------------------------------------------------
    def plan(self, question: str, scope: Scope | None = None) -> AnswerPlan:
        scope = scope or Scope()
        question = " ".join(question.split())
        if not question:
            raise ValueError("empty question")
        intent = parse(question)
        k = self.settings.answer_events
        if intent.kind == "now":
            events = self.bank.latest(stream=scope.stream, owner=scope.owner, limit=3)
            events.sort(key=lambda r: r.start)
            framing = "The last event listed is what is happening now."
            return self._finish(AnswerPlan(question, intent, events), framing, "now")
        if intent.kind == "range":
            if intent.recent_s is not None:  # "in the last 30 s": back from the latest event
                latest = self.bank.latest(stream=scope.stream, owner=scope.owner, limit=1)
                end = latest[0].end if latest else 0.0
                intent = replace(intent, t0=max(0.0, end - intent.recent_s), t1=end)
            ranged = Scope(scope.stream, scope.owner, intent.t0, intent.t1)
            if intent.topic:
                hits = self._relevant(intent.topic, ranged, k)
                events = [row for row, _ in hits]
                plan = AnswerPlan(question, intent, events, {r.id: s for r, s in hits})
            else:
                events = [hit.event for hit in self.retriever.search(None, k=k, scope=ranged)]
                plan = AnswerPlan(question, intent, events)
            span = prompts.span(intent.t0 or 0.0, intent.t1 or 0.0)
            return self._finish(plan, f"The events listed happened between {span}.", "range")
        hits = self._relevant(intent.topic or question, scope, k)
        if intent.kind == "last" and hits:
            latest = max(hits, key=lambda pair: pair[0].end)
            hits = [latest, *[pair for pair in hits if pair[0].id != latest[0].id][:2]]
            framing = f"The most recent matching event is [#{latest[0].id}]."
        else:
            framing = ""
        plan = AnswerPlan(question, intent, [row for row, _ in hits], {r.id: s for r, s in hits})
        return self._finish(plan, framing, intent.kind)

    def _relevant(self, topic: str, scope: Scope, k: int) -> list[tuple[EventRow, float]]:
        """Hybrid retrieval, then a relevance gate on the text similarity of each hit."""
        hits = self.retriever.search(topic, k=k, scope=scope)
        if not hits:
            return []
        query = self.retriever.text_embedder.embed([topic])[0]
        scored = []
        for hit in hits:
            vector = hit.event.text_embedding
            score = float(np.dot(vector, query)) if vector is not None else -1.0
            if score >= self.settings.relevance_threshold:
                scored.append((hit.event, score))
        return scored

    def _finish(self, plan: AnswerPlan, framing: str, kind: str) -> AnswerPlan:
        plan.events.sort(key=lambda r: r.start)
        if not plan.events:
            plan.fixed = _nothing(plan.intent)
            return plan
        if self.decoder is None:
            plan.fixed = _extractive(plan)
            return plan
        plan.request = prompts.answer_request(
            plan.question,
            plan.events,
            framing=framing,
            max_new_tokens=self.settings.answer_max_tokens,
            temperature=self.settings.temperature,
        )
        return plan

    # -- answering -----------------------------------------------------------------------------
    def stream(self, plan: AnswerPlan) -> Iterator[str]:
        if plan.request is None or self.decoder is None:
            yield plan.fixed or ""
            return
        yield from self.decoder.stream(plan.request)

    async def astream(self, plan: AnswerPlan) -> AsyncIterator[str]:
        if plan.request is None or self.decoder is None:
            yield plan.fixed or ""
            return
        async for delta in self.decoder.astream(plan.request):
            yield delta

    def finish(self, plan: AnswerPlan, text: str) -> Answer:
        """The answer with its citations: the events the text cites by id (only ones that were
        in the evidence), else all the evidence it was given."""
        text = text.strip()
        if not text and plan.events:
            text = _extractive(plan)
        by_id = {row.id: row for row in plan.events}
        cited = [by_id[i] for i in prompts.cited_ids(text) if i in by_id] or plan.events
        citations = [citation(row, plan.relevance.get(row.id)) for row in cited]
        return Answer(text, plan.intent.kind, citations, grounded=bool(plan.events))

    def answer(self, question: str, scope: Scope | None = None) -> Answer:
        plan = self.plan(question, scope)
        return self.finish(plan, "".join(self.stream(plan)))


def _nothing(intent: Intent) -> str:
    if intent.kind == "range":
        span = prompts.span(intent.t0 or 0.0, intent.t1 or 0.0)
        what = f" about {intent.topic}" if intent.topic else ""
        return f"I have nothing in memory{what} between {span}."
    if intent.kind == "now":
        return "I have no events in memory yet for this stream."
    return f"I have nothing in memory about {intent.topic or 'that'}."


def _extractive(plan: AnswerPlan) -> str:
    """An answer made of the evidence itself (no decoder, or the decoder said nothing)."""
    rows = plan.events
    if plan.intent.kind == "now" and rows:
        row = rows[-1]
        return f"Most recently ({prompts.span(row.start, row.end)}) [#{row.id}]: " + (
            row.caption or prompts.fallback_caption(row)
        )
    parts = [
        f"[#{r.id}] {prompts.span(r.start, r.end)}: {r.caption or prompts.fallback_caption(r)}"
        for r in rows[:3]
    ]
    return " ".join(parts)
