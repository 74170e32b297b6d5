"""The wire protocol: models, serialisation, and docs/protocol.md kept in step with them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from eventvstream.api import protocol
from eventvstream.events.types import Boundary, Event
from eventvstream.pipeline.ingest import CaptionDone, StoredEvent
from eventvstream.serving.notices import CaptionDelta, SessionError, SessionStatus

ROOT = Path(__file__).resolve().parents[2]


def _gen_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_protocol_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_protocol_md_reference_matches_the_models() -> None:
    """Fails when a message model changed and docs/protocol.md was not regenerated."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert protocol.reference() in text, "run: python scripts/gen_protocol_docs.py"
    assert _gen_script().updated(text) == text


def test_every_message_type_is_documented_once() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    for model in protocol.CLIENT_MESSAGES + protocol.SERVER_MESSAGES:
        kind = model.model_fields["type"].annotation.__args__[0]
        assert text.count(f"#### `{kind}`") == 1, kind


def _stored(merged: bool = False) -> StoredEvent:
    event = Event(
        index=0,
        start=1.0,
        end=2.5,
        opened_by=Boundary(0.0, "start"),
        closed_by=Boundary(2.5, "cue", threshold=np.float32(3.0), fired_at=3.0),
        frame_count=3,
        embedding=np.zeros(4, np.float32),
        keyframes=[],
    )
    return StoredEvent(
        id=7,
        stream="cam1",
        owner="",
        source=None,
        start=0.123456,
        end=2.5,
        merged=merged,
        labels=[("dog", np.float32(0.51234))],
        text="a video event showing dog",
        boundary=event.closed_by.to_dict(),
        event=event,
    )


def test_notices_become_the_documented_messages() -> None:
    boundary = json.loads(protocol.dump(protocol.from_notice(_stored(merged=True))))
    assert boundary["type"] == "event.boundary"
    assert boundary["event_id"] == 7 and boundary["start"] == 0.123 and boundary["merged"]
    assert boundary["labels"] == [["dog", 0.5123]]
    done = CaptionDone(_stored(), "A dog.", False, 0.123456, 0.1)
    assert json.loads(protocol.dump(protocol.from_notice(done))) == {
        "type": "event.caption.done",
        "event_id": 7,
        "caption": "A dog.",
        "latency_s": 0.1235,
    }
    delta = json.loads(protocol.dump(protocol.from_notice(CaptionDelta(7, "A"))))
    assert delta == {"type": "event.caption.delta", "event_id": 7, "delta": "A"}
    status = SessionStatus(1, 1, 0, 0, 0, 0, 0.0, 0.0, 0, 0)
    assert json.loads(protocol.dump(protocol.from_notice(status)))["type"] == "status"


def test_error_id_only_when_it_concerns_a_question() -> None:
    plain = json.loads(protocol.dump(protocol.from_notice(SessionError("bad_frame", "no"))))
    assert plain == {"type": "error", "code": "bad_frame", "message": "no"}
    asked = json.loads(protocol.dump(protocol.from_notice(SessionError("busy", "wait", "q1"))))
    assert asked["id"] == "q1"


def test_client_messages_are_strict() -> None:
    with pytest.raises(ValidationError):
        protocol.ClientQuery.model_validate({"type": "query", "id": "q", "text": "x", "n": 1})
    with pytest.raises(ValidationError):
        protocol.ClientSessionConfig.model_validate({"type": "session.config", "fps": 0})
    assert protocol.ClientPing.model_validate({"type": "ping"}).type == "ping"
