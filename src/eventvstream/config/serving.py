"""Settings sections that exist only for ``evs serve``: the server, alerts and MQTT."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from eventvstream.config.base import Section as _Section


class MqttSettings(_Section):
    """The MQTT broker alerts and event lifecycle messages are published to (Frigate-shaped
    topics, see docs/alerts.md). Off while ``host`` is empty."""

    host: str = Field("", description="Broker host; empty = no MQTT.")
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("evs", min_length=1, pattern=r"^[^#+]+$")
    client_id: str = Field("evs", min_length=1)
    username: str | None = None
    password_env: str = Field(
        "MQTT_PASSWORD", description="Environment variable holding the broker password."
    )
    tls: bool = Field(False, description="Connect with TLS.")
    tls_ca_certs: Path | None = Field(None, description="CA bundle for a self-signed broker.")
    tls_insecure: bool = Field(False, description="Skip the broker hostname check (tests only).")
    qos: int = Field(1, ge=0, le=2)
    keepalive_s: int = Field(30, ge=5, le=3600)
    events: bool = Field(
        True, description="Also publish event lifecycle messages (<prefix>/events, captions)."
    )


class AlertSettings(_Section):
    """Watches and their deliveries (webhooks, MQTT, server-sent events)."""

    enabled: bool = Field(True, description="Evaluate watches and deliver alerts.")
    threshold: float = Field(
        0.35, ge=-1, le=1, description="Default similarity a watch's text must reach."
    )
    cooldown_s: float = Field(
        60.0, ge=0, description="Default: a watch fires at most once per this much stream time."
    )
    max_per_hour: int = Field(60, ge=1, description="Default per-watch rate limit (wall clock).")
    verify_max_tokens: int = Field(3, ge=1, le=16, description="Tokens of a yes/no verification.")
    webhook_timeout_s: float = Field(5.0, gt=0, description="Whole-request webhook timeout.")
    webhook_max_attempts: int = Field(12, ge=1, le=100, description="Then the delivery fails.")
    webhook_backoff_s: float = Field(1.0, gt=0, description="First retry delay (doubles).")
    webhook_backoff_max_s: float = Field(300.0, gt=0, description="Longest retry delay.")
    webhook_workers: int = Field(4, ge=1, le=64, description="Deliveries in flight at once.")
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks reach loopback, private, link-local (cloud metadata) and other "
        "non-public addresses. Off: such URLs are refused when a watch is created and every "
        "connection is checked after DNS resolution (docs/security.md).",
    )
    webhook_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Webhook destinations allowed although not public: host names (exact), "
        "addresses or CIDR networks, e.g. ['hass.local', '10.0.5.0/24'].",
    )
    public_url: str | None = Field(
        None, description="Base URL put in front of keyframe links (default: relative links)."
    )
    max_watches: int = Field(100, ge=1, description="Watches per API key.")
    mqtt: MqttSettings = MqttSettings()


class ServerSettings(_Section):
    """``evs serve``: where it listens, who may call it, and the limits that keep it alive.

    API keys are secrets: give them through the environment (``EVS_SERVER__API_KEYS='["k1"]'``,
    a JSON list) rather than a profile, or store only their hashes (``"sha256:<hex>"``).
    """

    host: str = Field("127.0.0.1", min_length=1, description="Interface to bind.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port).")
    api_keys: list[str] = Field(
        default_factory=list,
        description="Accepted API keys: raw keys, or their SHA-256 as 'sha256:<64 hex>'.",
    )
    auth: Literal["auto", "required", "off"] = Field(
        "auto",
        description="auto: keys required when any are configured; with none, no-auth is allowed "
        "only on a loopback host. required: refuse to start without keys. off: no auth at all.",
    )
    max_frame_bytes: int = Field(4 << 20, ge=1, description="Largest image accepted as a frame.")
    max_message_bytes: int = Field(
        8 << 20, ge=1024, description="Largest WebSocket message; bigger ones close with 1009."
    )
    max_upload_bytes: int = Field(2 << 30, ge=1, description="Largest video upload.")
    max_sessions: int = Field(16, ge=1, le=10_000, description="Live sessions at the same time.")
    rate_per_s: float = Field(20.0, gt=0, description="Requests per second per API key (refill).")
    burst: int = Field(40, ge=1, description="Requests a key may make at once (bucket size).")
    frame_queue: int = Field(
        8, ge=1, le=1024, description="Frames waiting per session; when full the oldest is dropped."
    )
    status_interval_s: float = Field(1.0, gt=0, description="Seconds between status messages.")
    drain_timeout_s: float = Field(
        20.0, gt=0, description="On SIGTERM, how long in-flight work may take before exit."
    )
    # -- who may reach the server (docs/security.md) --------------------------------------------
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header names (or host:port) served; empty = the loopback names and "
        "the bind address (any name when binding a wildcard address such as 0.0.0.0); '*' = any. "
        "Anything else is refused (403 bad_host): DNS rebinding cannot reach a loopback server.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port]) allowed to open a WebSocket or send "
        "a state-changing request, besides the server's own origin; '*' = any.",
    )
    # -- bodies and messages ----------------------------------------------------------------------
    max_json_bytes: int = Field(
        64 << 10, ge=1024, description="Largest JSON request body (REST); bigger ones get 413."
    )
    max_json_depth: int = Field(
        32, ge=2, le=256, description="Deepest nesting of a JSON body or message."
    )
    send_queue_messages: int = Field(
        1024,
        ge=16,
        description="Messages waiting to go out on one WebSocket; past it the "
        "client is not reading and is closed (1008).",
    )
    send_queue_bytes: int = Field(
        4 << 20, ge=64 << 10, description="Bytes waiting to go out on one WebSocket (as above)."
    )
    # -- per-key quotas inside the global limits ------------------------------------------------
    max_sessions_per_key: int = Field(
        4, ge=1, description="Live sessions one API key may hold (of max_sessions)."
    )
    max_uploads: int = Field(
        16, ge=1, description="Uploads receiving, queued or running, all keys together."
    )
    max_uploads_per_key: int = Field(4, ge=1, description="Of max_uploads, for one key.")
    max_upload_queue_bytes: int = Field(
        8 << 30, ge=1, description="Bytes of uploads waiting or running, all keys together."
    )
    max_upload_queue_bytes_per_key: int = Field(
        4 << 30, ge=1, description="Of max_upload_queue_bytes, for one key."
    )
    max_pulls: int = Field(
        8,
        ge=1,
        description="Camera URLs the server pulls at once (POST /v1/streams with a source), all "
        "keys together; each is a live session too and holds a reader thread.",
    )
    max_pulls_per_key: int = Field(4, ge=1, description="Of max_pulls, for one key.")
    max_questions: int = Field(16, ge=1, description="Questions being answered at once.")
    max_questions_per_key: int = Field(4, ge=1, description="Of max_questions, for one key.")
    # -- failed authentication --------------------------------------------------------------------
    auth_failures: int = Field(
        20,
        ge=1,
        description="Failed authentications one client address may make per "
        "auth_failure_window_s; past it every request from it gets 429 until the window passes.",
    )
    auth_failure_window_s: float = Field(60.0, gt=0, description="See auth_failures.")
    upload_dir: Path | None = Field(
        None,
        description="Where uploads are spooled (null: <memory.data_dir>/uploads); "
        "leftovers are removed at start.",
    )
    # -- replicas on one shared database (memory.backend: postgres; docs/deploy.md) ---------------
    replica_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="This replica's name in the stream leases (default: host name and process "
        "id). Only used with a shared memory database.",
    )
    lease_ttl_s: float = Field(
        6.0,
        gt=0,
        le=600,
        description="A stream lease lasts this long unless renewed; a replica that vanishes "
        "without closing its database connection loses its streams after it (a crashed process "
        "loses them at once).",
    )
    heartbeat_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often a replica renews its leases and claims unowned pull sources.",
    )

    @model_validator(mode="after")
    def _message_holds_a_frame(self) -> ServerSettings:
        if self.heartbeat_s * 2 > self.lease_ttl_s:
            raise ValueError("lease_ttl_s must be at least twice heartbeat_s")
        if self.max_message_bytes < self.max_frame_bytes:
            raise ValueError("max_message_bytes must be at least max_frame_bytes")
        for share, whole in (
            ("max_sessions_per_key", "max_sessions"),
            ("max_uploads_per_key", "max_uploads"),
            ("max_upload_queue_bytes_per_key", "max_upload_queue_bytes"),
            ("max_questions_per_key", "max_questions"),
            ("max_pulls_per_key", "max_pulls"),
        ):
            if getattr(self, share) > getattr(self, whole):
                if share in self.model_fields_set:
                    raise ValueError(f"{share} must not exceed {whole}")
                setattr(self, share, getattr(self, whole))  # a default follows a lowered whole
        return self
