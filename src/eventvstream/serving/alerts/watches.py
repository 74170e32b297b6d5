"""Watch CRUD for one server: validation done by :mod:`.spec`, storage by
:mod:`eventvstream.memory.watches`, and the in-memory rules the engine matches with.

The watch text is embedded once, when it is written (the same sentence embedder as event
descriptions, so similarities are comparable); rules are rebuilt from the table after every
change, which is rare next to events.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from typing import Any

import numpy as np

from eventvstream.config import AlertSettings
from eventvstream.errors import EvsError
from eventvstream.memory.watches import StoredWatch, WatchStore
from eventvstream.serving.alerts.egress import WebhookPolicy
from eventvstream.serving.alerts.matching import WatchRule, parse_condition
from eventvstream.serving.alerts.spec import WatchCreate, WatchUpdate, public


def _not_found(watch_id: str) -> EvsError:
    return EvsError(f"no watch {watch_id!r}", code="not_found")


class WatchService:
    def __init__(
        self, store: WatchStore, settings: AlertSettings, embedder: Any, *, mqtt_on: bool
    ) -> None:
        self.store = store
        self.settings = settings
        self.embedder = embedder
        self.mqtt_on = mqtt_on
        self.policy = WebhookPolicy.from_settings(settings)
        self._lock = threading.Lock()
        self._rules: dict[str, list[tuple[WatchRule, StoredWatch]]] = {}
        self._revision: str | None = None
        self.reload()

    # -- rules ---------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Reload the rules if any watch changed since (through this process or another one
        on the same database: replicas); True when they were reloaded."""
        if self.store.revision() == self._revision:
            return False
        self.reload()
        return True

    def reload(self) -> None:
        revision = self.store.revision()  # before reading: a change made meanwhile reloads again
        rules: dict[str, list[tuple[WatchRule, StoredWatch]]] = {}
        model = self._model()
        for watch in self.store.all():
            # Re-embed only with an embedder that differs from the one that embedded it (a
            # rewrite changes the revision, which every replica reloads on).
            if model is not None and (watch.vector is None or watch.vector_model != model):
                watch = self._reembed(watch)
            rules.setdefault(watch.owner, []).append((self.rule(watch), watch))
        with self._lock:
            self._rules = rules
            self._revision = revision

    def rules_for(self, owner: str) -> list[tuple[WatchRule, StoredWatch]]:
        with self._lock:
            return list(self._rules.get(owner, ()))

    def owners(self) -> set[str]:
        with self._lock:
            return set(self._rules)

    def rule(self, watch: StoredWatch) -> WatchRule:
        spec, s = watch.spec, self.settings
        return WatchRule(
            id=watch.id,
            owner=watch.owner,
            stream=watch.stream,
            condition=parse_condition(spec["text"], spec.get("min_duration_s")),
            threshold=_or(spec.get("threshold"), s.threshold),
            cooldown_s=_or(spec.get("cooldown_s"), s.cooldown_s),
            max_per_hour=int(_or(spec.get("max_per_hour"), s.max_per_hour)),
            verify=bool(spec.get("verify")),
            enabled=bool(spec.get("enabled", True)),
            created=watch.updated,  # events changed before the watch said this: not judged
            vector=watch.vector,
        )

    def deliveries(self, watch: StoredWatch) -> list[tuple[str, dict[str, Any]]]:
        """The outbox rows one alert of this watch gets."""
        spec = watch.spec
        found: list[tuple[str, dict[str, Any]]] = []
        if spec.get("webhook"):
            found.append(("webhook", dict(spec["webhook"])))
        mqtt = spec.get("mqtt")
        if self.mqtt_on and (mqtt is None or mqtt):
            found.append(("mqtt", {}))
        return found

    # -- embedding -----------------------------------------------------------------------------
    def _model(self) -> str | None:
        return None if self.embedder is None else str(self.embedder.info.model)

    def _embed(self, text: str) -> np.ndarray | None:
        if self.embedder is None:
            return None
        return np.asarray(self.embedder.embed([text])[0], np.float32)

    def _reembed(self, watch: StoredWatch) -> StoredWatch:
        vector = self._embed(watch.spec["text"])
        updated = self.store.update(
            watch.owner, watch.id, watch.stream, watch.spec, vector, self._model()
        )
        return updated or watch

    # -- CRUD (blocking: call from a worker thread) --------------------------------------------
    def create(self, owner: str, body: WatchCreate) -> dict[str, Any]:
        if self.store.count(owner) >= self.settings.max_watches:
            raise EvsError(
                f"at most {self.settings.max_watches} watches per key", code="too_many_watches"
            )
        spec = body.model_dump(exclude={"stream"})
        self._check_webhook(spec.get("webhook"))
        secret = None
        if spec.get("webhook") and not spec["webhook"].get("secret"):
            secret = spec["webhook"]["secret"] = secrets.token_urlsafe(32)
        watch_id = "w_" + uuid.uuid4().hex[:16]
        watch = self.store.create(
            watch_id, owner, body.stream, spec, self._embed(body.text), self._model()
        )
        self.reload()
        shown = self.describe(watch)
        if secret is not None:  # shown once: the receiver needs it to check signatures
            shown["webhook"]["secret"] = secret
        return shown

    def update(self, owner: str, watch_id: str, body: WatchUpdate) -> dict[str, Any]:
        watch = self.store.get(owner, watch_id)
        if watch is None:
            raise _not_found(watch_id)
        changes = body.model_dump(exclude_unset=True)
        stream = watch.stream
        if changes.pop("all_streams", None):
            stream = None
        if "stream" in changes:
            stream = changes.pop("stream")
        spec = watch.spec | changes
        self._check_webhook(changes.get("webhook"))
        if changes.get("webhook") and not changes["webhook"].get("secret"):
            old = watch.spec.get("webhook") or {}
            spec["webhook"]["secret"] = old.get("secret") or secrets.token_urlsafe(32)
        vector = self._embed(spec["text"]) if "text" in changes else watch.vector
        updated = self.store.update(owner, watch_id, stream, spec, vector, self._model())
        if updated is None:
            raise _not_found(watch_id)
        self.reload()
        return self.describe(updated)

    def _check_webhook(self, webhook: dict[str, Any] | None) -> None:
        """Refuse a destination the operator does not allow (``webhook_url_forbidden``); each
        delivery is checked again after DNS resolution (:mod:`.egress`)."""
        if webhook:
            self.policy.check_url(webhook["url"])

    def delete(self, owner: str, watch_id: str) -> None:
        if not self.store.delete(owner, watch_id):
            raise _not_found(watch_id)
        self.reload()

    def get(self, owner: str, watch_id: str) -> dict[str, Any]:
        watch = self.store.get(owner, watch_id)
        if watch is None:
            raise _not_found(watch_id)
        return self.describe(watch)

    def list(self, owner: str) -> list[dict[str, Any]]:
        return [self.describe(w) for w in self.store.of_owner(owner)]

    def describe(self, watch: StoredWatch) -> dict[str, Any]:
        rule = self.rule(watch)
        return {
            "id": watch.id,
            "stream": watch.stream,
            **public(watch.spec),
            "condition": rule.condition.kind,
            "effective": {
                "threshold": rule.threshold,
                "cooldown_s": rule.cooldown_s,
                "max_per_hour": rule.max_per_hour,
                "min_duration_s": rule.condition.min_duration_s,
                "channels": [c for c, _ in self.deliveries(watch)],
            },
            "created": watch.created,
            "updated": watch.updated,
        }


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value
