"""Questions about a video, answered from memory with cited events.

Memory decides the facts; the decoder only phrases. For every question the answerer first
builds a **templated answer** from the events themselves — which events match, when they
happened, how many times, yes or no — with every time and ``[#id]`` taken from memory
(:mod:`eventvstream.language.answers`). A decoder, when there is one and
``language.phrase_answers`` is on, is asked to rephrase that answer; its text is checked
before anyone sees it (it arrives whole, not token by token): a time that belongs to no cited
event and not to the question, an id that is not in the evidence, a "when" answer with no time,
a count or yes/no that differs from memory's, a thing its evidence does not name (the cited
events' labels and captions, the question's own words: ``grounding.invented_content``) — any
of these, and the templated answer is given instead (counted in :attr:`Answerer.stats`, the
reason logged). A live stream's answers state the wall clock in ``language.timezone`` (its
events carry it), a file's stream times; the check reads both.

Summaries ("what happened?") are timelines of the events in scope, hierarchical for long
streams (:mod:`eventvstream.language.summary`), and never say "nothing" when the scope has
events.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from eventvstream.config import LanguageSettings
from eventvstream.language import answers, prompts
from eventvstream.language.base import Decoder, GenerationRequest
from eventvstream.language.grounding import (
    INVENTED,
    Times,
    evidence,
    invented_content,
    invented_times,
    stated_times,
    stray_numbers,
)
from eventvstream.language.intent import Intent, parse
from eventvstream.language.matching import Matcher, broader, subject_term, unchecked_words
from eventvstream.language.wallclock import Clock
from eventvstream.language.windows import off_clock, resolve_window
from eventvstream.memory.bank import MemoryBank
from eventvstream.memory.retrieval import Retriever, Scope
from eventvstream.memory.rows import EventRow, wall_times

log = logging.getLogger(__name__)
#: Events read per question at most (a 2-hour stream at one event per 2 s is 3600).
MAX_SCOPE_EVENTS = 20_000

#: Words too general to stand in for what was asked ("a thing that holds things").
#: Words too broad to stand in for a thing: a clear dog is a "mammal", and that is no reason
#: to answer "was there an elephant?" or "a horse?" with "not sure".
GENERIC_FALLBACK = {"container", "machine", "tool", "device", "animal", "mammal"}

#: How a phrasing keeps a hedge: "I could not tell", "not sure", "unclear", "maybe".
_HEDGE = re.compile(
    r"\b(?:not|n't)\s+(?:tell|sure|certain)\b|\bunclear\b|\bunsure\b|\bmaybe\b", re.I
)

#: Optional source of still-open events (a live session's frames so far), per scope.
OpenEvents = Callable[[Scope], list[EventRow]]


@dataclass
class AnswerPlan:
    question: str
    intent: Intent
    events: list[EventRow]  # the evidence, in time order
    relevance: dict[int, float] = field(default_factory=dict)
    request: GenerationRequest | None = None  # None: the answer is ``fixed`` (no decoder call)
    fixed: str | None = None  # the templated answer (always set once planned)
    question_times: list[float] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # count / present / needs_time
    final: str | None = None  # the checked text, once streamed
    phrased: bool = False  # the decoder's phrasing passed the checks and is the answer
    times: Times = field(default_factory=Times)  # how the answer writes times
    #: the zone's name when the question's window was read on the wall clock (a live stream)
    zone: str | None = None
    phrasing: str | None = None  # the decoder's text, as it came (before the checks)
    rejected: str | None = None  # why the phrasing was not the answer (None: not rejected)


@dataclass
class Answer:
    text: str
    intent: str
    citations: list[dict[str, Any]]
    grounded: bool  # False: memory had nothing relevant
    phrased: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent,
            "citations": self.citations,
            "grounded": self.grounded,
            "phrased": self.phrased,
        }


def citation(row: EventRow, score: float | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "stream": row.stream,
        "start": round(row.start, 3),
        "end": round(row.end, 3),
        "caption": row.caption,
        **wall_times(row.wall_start, row.start, row.end),
        **({"relevance": round(score, 4)} if score is not None else {}),
    }


class Answerer:
    def __init__(
        self,
        bank: MemoryBank,
        retriever: Retriever,
        decoder: Decoder | None,
        settings: LanguageSettings,
        *,
        open_events: OpenEvents | None = None,
    ) -> None:
        self.bank = bank
        self.retriever = retriever
        self.decoder = decoder
        self.settings = settings
        self.open_events = open_events
        self.matcher = Matcher(retriever.text_embedder.embed, settings.match_threshold)
        self.clock = Clock.named(settings.timezone)
        self.stats: Counter[str] = Counter()

    # -- planning: memory only, no decoder ----------------------------------------------------
    def plan(self, question: str, scope: Scope | None = None) -> AnswerPlan:
        scope = scope or Scope()
        question = " ".join(question.split())
        if not question:
            raise ValueError("empty question")
        intent = self.parse(question, scope)
        if intent.stream and scope.stream is None:
            scope = replace(scope, stream=intent.stream)
        times = Times(self.clock, time.time())
        window = resolve_window(self.bank, self.clock, intent, scope, times.now)
        intent = window.intent
        if intent.t0 is not None or intent.t1 is not None:
            scope = replace(scope, t0=intent.t0, t1=intent.t1)
        plan = AnswerPlan(question, intent, [], question_times=window.times, times=times)
        plan.zone = times.zone() if window.on_clock else None
        if (note := off_clock(window)) is not None:  # "from 9am to 11" on a file
            plan.fixed = note
        elif intent.kind == "now":
            self._plan_now(plan, scope)
        elif not intent.topic:  # summary, or a window with nothing named: its timeline
            rows = self.bank.events(
                stream=scope.stream,
                owner=scope.owner,
                t0=scope.t0,
                t1=scope.t1,
                limit=MAX_SCOPE_EVENTS,
            )
            plan.events = rows
            plan.fixed = answers.summary(intent, rows, scope.stream, plan.times, plan.zone)
        else:
            self._plan_topic(plan, scope)
        self.stats["questions"] += 1
        self.stats[f"kind_{intent.kind}"] += 1
        return self._phrase(plan)

    def parse(self, question: str, scope: Scope) -> Intent:
        """Rules, or the decoder's structured parse where configured (rules on any failure)."""
        streams = [] if scope.stream else self._stream_names(scope)
        if self.settings.intent_parser == "decoder" and self.decoder is not None:
            from eventvstream.language.intent_llm import parse_with_decoder

            parsed = parse_with_decoder(self.decoder, question, streams)
            self.stats["intent_decoder" if parsed else "intent_decoder_fallback"] += 1
            if parsed is not None:
                return parsed
        return parse(question, streams)

    def _stream_names(self, scope: Scope) -> list[str]:
        try:
            return list(self.bank.stream_summaries(scope.owner or ""))
        except Exception:  # a name in the question is a convenience, never a failure
            log.exception("could not list streams")
            return []

    def _plan_now(self, plan: AnswerPlan, scope: Scope) -> None:
        rows = self.bank.latest(stream=scope.stream, owner=scope.owner, limit=3)
        if self.open_events is not None:
            rows = rows + self.open_events(scope)
        rows.sort(key=lambda r: (r.start, r.id))
        plan.events = rows[-3:]
        plan.facts["needs_time"] = True
        plan.fixed = answers.now(plan.events, plan.times)

    def _plan_topic(self, plan: AnswerPlan, scope: Scope) -> None:
        intent = plan.intent
        rows = self.bank.events(
            stream=scope.stream, owner=scope.owner, t0=scope.t0, t1=scope.t1, limit=MAX_SCOPE_EVENTS
        )
        kind = intent.kind
        loose = self.settings.relevance_threshold if kind == "search" else None
        matched = self.matcher.matches(intent.topic, rows, loose)
        where = answers.where(intent, scope.stream, plan.zone)
        times = plan.times
        topic = intent.topic
        broader = None
        if not matched and kind in ("last", "first", "count", "presence"):
            matched, broader = self._broader(intent.topic, rows)
        elif matched and kind != "search" and subject_term(topic) and unchecked_words(topic):
            # "people walking" found as "a person": the labels cannot tell the walking
            broader = subject_term(topic)
        if broader and kind != "presence":  # said plainly: "a vehicle (I could not tell
            topic = answers.as_broader(intent.topic, broader)  # whether it was a bicycle)"
        plan.relevance = {row.id: score for row, score in matched}
        hits = [row for row, _ in matched]
        if kind == "last":
            plan.events = hits[-1:]
            plan.fixed = answers.last(topic, hits, where, times)
        elif kind == "first":
            plan.events = hits[:1]
            plan.fixed = answers.first(topic, hits, where, times)
        elif kind == "count":
            runs = answers.occurrences(hits, rows)
            ends = [row for run in runs[: answers.MAX_LISTED] for row in (run[0], run[-1])]
            plan.events = list({row.id: row for row in ends}.values())
            plan.facts["count"] = len(runs)
            plan.fixed = answers.count(topic, runs, where, times)
        elif kind == "presence":
            plan.events = hits[: answers.MAX_LISTED]
            if broader is None:
                plan.facts["present"] = bool(hits)
            else:  # a hedge is neither yes nor no, and a phrasing must not make it one
                plan.facts["hedged"] = True
            plan.fixed = answers.presence(intent.topic, hits, where, broader, times)
        else:  # search, or a window about something
            best = sorted(matched, key=lambda pair: -pair[1])[: self.settings.answer_events]
            plan.events = sorted((row for row, _ in best), key=lambda r: (r.start, r.id))
            plan.fixed = answers.sightings(intent.topic, plan.events, where, times)
        plan.facts["needs_time"] = kind in ("last", "first") or intent.when
        # only a broader thing was seen: a phrasing must keep "I could not tell", or it claims
        # the question's thing (the question's own words pass the content check)
        plan.facts["unsure"] = bool(broader and hits and kind != "search")

    def _broader(
        self, topic: str, rows: list[EventRow]
    ) -> tuple[list[tuple[EventRow, float]], str | None]:
        """Events showing the nearest everyday word above the topic's thing (a bicycle the
        classifier only sees as "a vehicle"), and that word; none when that word is not seen.

        Only the *nearest* word (after skipping ones too generic to stand in): a bicycle's is
        "vehicle", an airplane's "aircraft" — so cars seen on the street hedge a question about
        a bicycle, but do not turn "did we see an airplane?" into "maybe" (a vehicle is two
        steps above an airplane and says nothing about one)."""
        term = subject_term(topic)
        nearest = [w for w in (broader(term) if term else ()) if w not in GENERIC_FALLBACK][:1]
        for word in nearest:
            matched = self.matcher.matches(word, rows)
            if matched:
                return matched, word
        return [], None

    def _phrase(self, plan: AnswerPlan) -> AnswerPlan:
        """Ask the decoder to phrase a templated answer (not summaries: their timeline *is*
        the answer, and its length would cost a CPU decoder seconds per line)."""
        plan.events.sort(key=lambda r: (r.start, r.id))
        if (
            self.decoder is None
            or not self.settings.phrase_answers
            or not plan.events
            or (not plan.intent.topic and plan.intent.kind != "now")
        ):
            return plan
        plan.request = prompts.answer_request(
            plan.question,
            plan.events,
            framing=f"Correct answer: {plan.fixed}",
            max_new_tokens=self.settings.answer_max_tokens,
            temperature=self.settings.temperature,
            times=plan.times,
        )
        return plan

    # -- answering ----------------------------------------------------------------------------
    def stream(self, plan: AnswerPlan) -> Iterator[str]:
        """The answer text. A decoder's phrasing is checked first, so it arrives whole."""
        if plan.request is None or self.decoder is None:
            plan.final = plan.fixed or ""
        else:
            plan.final = self._checked(plan, "".join(self.decoder.stream(plan.request)))
        yield plan.final

    async def astream(self, plan: AnswerPlan) -> AsyncIterator[str]:
        if plan.request is None or self.decoder is None:
            plan.final = plan.fixed or ""
        else:
            parts = [delta async for delta in self.decoder.astream(plan.request)]
            plan.final = self._checked(plan, "".join(parts))
        yield plan.final

    def _checked(self, plan: AnswerPlan, text: str) -> str:
        plan.phrasing = text
        problem = self.problem(plan, text)
        if problem is None:
            plan.phrased = True
            self.stats["phrased"] += 1
            return text.strip()
        plan.rejected = problem
        self.stats["phrasing_rejected"] += 1
        if problem.startswith(INVENTED):
            self.stats["phrasing_rejected_content"] += 1
        log.info("decoder answer rejected (%s): %r", problem, text[:200])
        return plan.fixed or ""

    def problem(self, plan: AnswerPlan, text: str) -> str | None:
        """Why a decoder's text cannot be the answer, or None when it can."""
        text = text.strip()
        if not text:
            return "empty"
        given = {row.id for row in plan.events}
        cited = prompts.cited_ids(text)
        if not cited:
            return "cites no event"
        if any(i not in given for i in cited):
            return "cites an event not in the evidence"
        rows = [row for row in plan.events if row.id in cited]
        if invented_times(text, rows, plan.question_times, self.clock):
            return "states a time no cited event has"
        if stray_numbers(text, [plan.facts["count"]] if "count" in plan.facts else []):
            return "states a number memory did not give"
        if "\n" in text.strip():
            return "more than one paragraph"
        if plan.facts.get("needs_time") and not stated_times(text):
            return "a 'when' answer without a time"
        if "count" in plan.facts and not answers.states_count(text, plan.facts["count"]):
            return "a count that is not memory's"
        if "present" in plan.facts and not answers.states_yes_no(text, plan.facts["present"]):
            return "a yes/no that is not memory's"
        if plan.facts.get("hedged") and (
            answers.states_yes_no(text, True) or answers.states_yes_no(text, False)
        ):
            return "a yes/no where memory could not tell"
        if plan.facts.get("unsure") and not _HEDGE.search(text):
            return "drops memory's 'could not tell'"
        if self.settings.check_content:  # last: every other check passed (bench_qa relies on it)
            said = evidence(rows, [plan.question, plan.fixed or ""])
            invented = invented_content(text, said)
            if invented:
                return f"{INVENTED} ({', '.join(invented[:6])})"
        return None

    def finish(self, plan: AnswerPlan, text: str) -> Answer:
        """The answer with its citations: the events the text cites by id (only ones that were
        in the evidence), else all the evidence it was given."""
        if plan.final is not None:
            text = plan.final
        elif plan.request is None or self.problem(plan, text) is not None:
            text = plan.fixed or text
        text = text.strip()
        stored = [row for row in plan.events if row.id >= 0]  # an open event is not citable
        by_id = {row.id: row for row in stored}
        cited = [by_id[i] for i in prompts.cited_ids(text) if i in by_id] or stored
        citations = [citation(row, plan.relevance.get(row.id)) for row in cited]
        grounded = bool(plan.events) and plan.facts.get("present", True) is not False
        return Answer(text, plan.intent.kind, citations, grounded=grounded, phrased=plan.phrased)

    def answer(self, question: str, scope: Scope | None = None) -> Answer:
        plan = self.plan(question, scope)
        return self.finish(plan, "".join(self.stream(plan)))
