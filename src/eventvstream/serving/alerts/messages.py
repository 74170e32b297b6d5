"""The shapes that leave the server: an event as alerts cite it, an alert, a lifecycle message.

Lifecycle messages follow Frigate's ``events`` topic: ``type`` is ``new`` (the event was stored:
its span is known), ``update`` (it changed: merged with the next one, or re-described), or
``end`` (its caption is written: the description is final unless a later merge reopens it), with
the event ``before`` and ``after`` the change (``before`` is null for ``new``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from eventvstream.memory.rows import EventRow
from eventvstream.serving.alerts.matching import Decision, WatchRule

SEEN_MAX = 4096  # events whose last published shape is remembered (for before/after)


def keyframe_url(base: str | None, row: EventRow) -> str:
    return f"{(base or '').rstrip('/')}/v1/streams/{row.stream}/events/{row.id}/keyframe"


def event_view(row: EventRow, url: str | None) -> dict[str, Any]:
    """An event as every alert and lifecycle message cites it."""
    return {
        "id": row.id,
        "stream": row.stream,
        "owner": row.owner,
        "start": round(row.start, 3),
        "end": round(row.end, 3),
        "caption": row.caption,
        "labels": [label[0] for label in row.labels[:3]],
        "merge_count": row.merge_count,
        "keyframe_url": url,
    }


def alert_payload(
    rule: WatchRule,
    spec: dict[str, Any],
    row: EventRow,
    url: str | None,
    decision: Decision,
    verified: bool | None,
    answer: str | None,
    now: float,
) -> dict[str, Any]:
    return {
        "watch": {
            "id": rule.id,
            "name": spec.get("name"),
            "text": spec.get("text"),
            "stream": rule.stream,
        },
        "stream": row.stream,
        "event": event_view(row, url),
        "why": {
            "condition": rule.condition.kind,
            "reason": decision.reason,
            "score": None if decision.score is None else round(decision.score, 4),
            "threshold": decision.threshold,
            "verified": verified,
            "verify_answer": answer,
            "phase": "caption" if row.caption is not None else "stored",
        },
        "created": round(now, 3),
    }


class Lifecycle:
    """Turns a stream of row changes into new / update / end messages (one engine thread)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def changes(self, row: EventRow, url: str | None) -> list[dict[str, Any]]:
        after = event_view(row, url)
        before = self._seen.pop(row.id, None)
        self._seen[row.id] = after
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        messages = []
        if before is None:
            messages.append({"type": "new", "before": None, "after": after})
        elif _differs(before, after):
            kind = "end" if after["caption"] and after["caption"] != before["caption"] else "update"
            return [{"type": kind, "before": before, "after": after}]
        if before is None and after["caption"]:
            messages.append({"type": "end", "before": after, "after": after})
        return messages


def _differs(before: dict[str, Any], after: dict[str, Any]) -> bool:
    keys = ("start", "end", "caption", "merge_count", "keyframe_url")
    return any(before[k] != after[k] for k in keys)
