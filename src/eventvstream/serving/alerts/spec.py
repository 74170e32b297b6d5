"""What a watch may say: the request models of ``/v1/watches`` and the stored spec.

One definition serves the REST layer (validation, OpenAPI) and the engine (the stored JSON is
``WatchSpec.model_dump()``), so the two cannot drift. Only ``text`` is required (plus a stream or
nothing for all of the caller's streams); every knob left out takes the server's default from
``alerts.*`` at evaluation time, so changing a default changes every watch that did not set it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eventvstream.serving.session import MAX_CLIENT_TIME_S

# A stream id: 1-64 characters of [A-Za-z0-9._-], not only dots: "." and ".." are dot-segments
# that HTTP clients and browsers remove from a URL path, so a stream of that name could be made
# but never addressed again. The regex engine has no look-ahead, so the length is a separate
# rule (STREAM_MAX_CHARS, checked first: a 64-character match costs nothing).
STREAM_PATTERN = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
STREAM_MAX_CHARS = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookTarget(_Strict):
    url: str = Field(max_length=2000, description="http(s) URL the alert is POSTed to.")
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="HMAC-SHA256 key for X-EVS-Signature; a random one is made when omitted "
        "and returned once, in the create response.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook url must be an http:// or https:// URL with a host")
        return value


class WatchFields(_Strict):
    """Everything but the text and the stream (shared by create and update)."""

    name: str | None = Field(None, max_length=200, description="A label for people.")
    webhook: WebhookTarget | None = None
    mqtt: bool | None = Field(
        None, description="Publish its alerts on MQTT (default: when a broker is configured)."
    )
    verify: bool = Field(
        False, description="Ask the decoder a yes/no question before firing (slower)."
    )
    threshold: float | None = Field(
        None, ge=-1, le=1, description="Similarity needed (default alerts.threshold)."
    )
    cooldown_s: float | None = Field(
        None, ge=0, le=86400 * 7, description="Quiet stream time after firing on a stream."
    )
    max_per_hour: int | None = Field(None, ge=1, le=3600, description="Rate limit.")
    min_duration_s: float | None = Field(
        None,
        gt=0,
        le=MAX_CLIENT_TIME_S,  # finite: Infinity was stored and shown back as null
        description="Fire on events longer than this instead of on their meaning.",
    )
    enabled: bool = True


class WatchCreate(WatchFields):
    text: str = Field(min_length=1, max_length=500, description="The condition, in words.")
    stream: str | None = Field(
        None,
        pattern=STREAM_PATTERN,
        max_length=STREAM_MAX_CHARS,
        description="One stream; omitted = all your streams.",
    )


class WatchUpdate(_Strict):
    """PATCH: only the fields given change (``webhook: null`` removes the webhook)."""

    text: str | None = Field(None, min_length=1, max_length=500)
    stream: str | None = Field(None, pattern=STREAM_PATTERN, max_length=STREAM_MAX_CHARS)
    all_streams: bool | None = Field(None, description="true: watch every stream (clears stream).")
    name: str | None = Field(None, max_length=200)
    webhook: WebhookTarget | None = None
    mqtt: bool | None = None
    verify: bool | None = None
    threshold: float | None = Field(None, ge=-1, le=1)
    cooldown_s: float | None = Field(None, ge=0, le=86400 * 7)
    max_per_hour: int | None = Field(None, ge=1, le=3600)
    min_duration_s: float | None = Field(None, gt=0, le=MAX_CLIENT_TIME_S)
    enabled: bool | None = None


def public(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored spec as the API shows it: the webhook secret is never shown again."""
    shown = dict(spec)
    webhook = shown.get("webhook")
    if webhook:
        shown["webhook"] = {"url": webhook["url"], "secret_set": bool(webhook.get("secret"))}
    return shown
