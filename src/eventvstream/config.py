"""The one settings model.

Settings come from three places, strongest first: explicit overrides passed by code (the CLI's
flags), ``EVS_*`` environment variables (nested keys joined with ``__``, e.g.
``EVS_EVENTS__MIN_EVENT_S=2``), and a YAML profile (``configs/default.yaml`` unless told
otherwise). Unknown keys are rejected, so a typo in a profile fails loudly at start instead of
silently doing nothing; every error names the dotted key it is about.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from eventvstream.errors import ConfigError

PROFILE_NAMES = ("default", "tiny", "gpu", "remote")

#: ``EVS_*`` variables that are not settings: profile choice, setup extras, golden-file refresh.
NON_SETTING_ENV = frozenset({"EVS_CONFIG", "EVS_EXTRAS", "EVS_TORCH_INDEX", "EVS_UPDATE_GOLDEN"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class SamplingSettings(_Section):
    """How frames are taken from a video."""

    fps: float = Field(2.0, gt=0, le=120, description="Frames sampled per second of video.")
    decode_short_side: int = Field(
        224, ge=32, le=2160, description="Frames are resized at decode time to this short side."
    )
    chunk_frames: int = Field(16, ge=1, le=512, description="Sampled frames decoded per chunk.")
    decode_threads: int | None = Field(
        None, ge=1, le=64, description="FFmpeg decoder threads; null = split cores (see pipeline)."
    )
    reader: Literal["pyav", "decord"] = Field(
        "pyav",
        description=(
            "Video file reader: pyav (FFmpeg 8: AV1, Theora, MPEG-4 in AVI...) or decord "
            "(the older reader; see docs/benchmarks.md)."
        ),
    )
    decode_timeout_s: float = Field(
        60.0, gt=0, description="A decoder silent for this long is killed and reported."
    )
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest image (w*h) accepted from bytes."
    )


class EncoderSettings(_Section):
    """Which image/text encoder turns frames into features."""

    backend: Literal["efficientnet", "open_clip"] = "efficientnet"
    model: str = Field("efficientnet-lite0", min_length=1)
    pretrained: str | None = Field(
        "packaged",
        description=(
            "efficientnet: 'packaged' or a .pth path. open_clip: a pretrained tag (hub), a local "
            "checkpoint path, or null for random weights."
        ),
    )
    model_config_json: dict[str, Any] | None = Field(
        None,
        description="open_clip only: an architecture config registered under `model` (tiny tests).",
    )
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    image_size: int | None = Field(
        None,
        ge=32,
        le=1024,
        description="efficientnet only: square input size (null = the model's own, 224).",
    )
    batch_size: int = Field(16, ge=1, le=1024)
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads; null = the cores the decoder leaves free."
    )
    seed: int = 0
    top_k_labels: int = Field(20, ge=0, le=50)


class EventSettings(_Section):
    """The three-cue boundary detector (see docs/architecture.md for the method)."""

    w_semantic: float = Field(1.0, ge=0, description="Weight of the semantic cue in the fusion.")
    w_motion: float = Field(0.3, ge=0, description="Weight of the motion cue (0 disables it).")
    w_predictive: float = Field(
        0.5, ge=0, description="Weight of the predictive cue (0 disables it)."
    )
    ema_rho: float = Field(0.1, gt=0, le=1, description="EMA rate of the event's mean feature.")
    tau0: float = Field(5.0, gt=0, description="Base threshold on the fused, normalised score.")
    eta: float = Field(0.25, ge=0, description="How much motion variance raises the threshold.")
    variance_window: int = Field(10, ge=2, le=1000, description="Frames in the motion window.")
    min_event_s: float = Field(1.0, ge=0, description="No boundary makes an event shorter.")
    max_event_s: float = Field(
        300.0, gt=0, description="An event this long is closed even without a boundary."
    )
    scale_rate: float = Field(
        0.05, gt=0, le=1, description="EMA rate of each cue's typical value (its normaliser)."
    )
    semantic_floor: float = Field(0.03, gt=0, description="Smallest semantic normaliser.")
    motion_floor: float = Field(0.05, gt=0, description="Smallest motion normaliser.")
    predictive_floor: float = Field(0.06, gt=0, description="Smallest predictive normaliser.")
    semantic_ceiling: float = Field(0.04, gt=0, description="Largest semantic normaliser.")
    motion_ceiling: float = Field(0.6, gt=0, description="Largest motion normaliser.")
    predictive_ceiling: float = Field(0.06, gt=0, description="Largest predictive normaliser.")
    blank_std: float = Field(
        0.015, ge=0, description="Frames whose grey contrast is below this are blank (black)."
    )
    motion_grid: tuple[int, int] = Field((32, 18), description="Grey image size for motion.")
    predictor_hidden: int = Field(64, ge=1, le=4096)
    predictor_lr: float = Field(0.05, ge=0, description="Online SGD rate; 0 freezes the predictor.")
    confirm_frames: int = Field(
        1, ge=1, le=16, description="Frames after a candidate that must show the change lasted."
    )
    confirm_margin: float = Field(
        0.0, ge=-1, le=1, description="How much closer to the candidate than to the old event."
    )
    confirm_colour: float = Field(
        0.0, ge=0, le=1, description="Colour-histogram change a boundary needs (0: not checked)."
    )
    confirm_strong: float = Field(
        2.0, ge=0, le=2, description="A semantic shift this large needs no colour change."
    )
    exact_cuts: bool = Field(
        True, description="Files: move a hard cut onto its exact frame (decodes a few frames)."
    )
    cut_dominance: float = Field(
        3.0, ge=1, description="A hard cut's frame jump must be this many times any other."
    )
    refine_lookback_s: float = Field(
        1.5, ge=0, description="Window in which a boundary is moved to the centre of change."
    )
    pooling: Literal["mean", "boundary"] = Field(
        "boundary", description="Event embedding: plain mean, or frames near boundaries weigh 2x."
    )
    keyframes: int = Field(3, ge=1, le=16, description="Keyframes chosen per event.")
    retained_images: int = Field(16, ge=1, le=256, description="Keyframe candidates kept.")

    @model_validator(mode="after")
    def _lengths_make_sense(self) -> EventSettings:
        if self.max_event_s <= self.min_event_s:
            raise ValueError("max_event_s must be greater than min_event_s")
        for cue in ("semantic", "motion", "predictive"):
            if getattr(self, f"{cue}_ceiling") < getattr(self, f"{cue}_floor"):
                raise ValueError(f"{cue}_ceiling must be >= {cue}_floor")
        if self.keyframes > self.retained_images:
            raise ValueError("keyframes must not exceed retained_images")
        return self


class MemorySettings(_Section):
    """The persistent memory bank: a SQL source of truth (an embedded SQLite file, or a shared
    PostgreSQL database) and this process's FAISS caches in ``data_dir``."""

    data_dir: Path = Field(
        Path("~/.local/share/eventvstream"),
        description="Where evs.sqlite3 (sqlite backend) and this process's FAISS caches live; "
        "one process per directory.",
    )
    backend: Literal["sqlite", "postgres"] = Field(
        "sqlite",
        description="sqlite: one embedded file, one writer process; postgres: a shared database "
        "(memory.url) that several evs processes write and search at once.",
    )
    url: SecretStr | None = Field(
        None,
        description="postgres backend: a libpq URL, postgresql://user:password@host:port/db "
        "(never logged; set it from EVS_MEMORY__URL to keep the password out of files).",
    )
    pool_size: int = Field(8, ge=1, le=256, description="postgres: pooled connections.")
    follow_interval_s: float = Field(
        0.2,
        gt=0,
        le=60,
        description="postgres: how often the caches poll the shared change sequence for other "
        "processes' writes (searchable here this soon after their commit).",
    )
    consolidate: bool = Field(True, description="Merge a new event into the stream's last one?")
    merge_threshold: float = Field(
        0.92, ge=-1, le=1, description="γ: merge when cos(new, last) exceeds this."
    )
    merge_max_gap_s: float = Field(
        2.0, ge=0, description="Only merge events at most this far apart in time."
    )
    exact_max: int = Field(
        50_000, ge=1, description="Above this many vectors, switch to an approximate IVF index."
    )
    ivf_nprobe: int = Field(32, ge=1, le=65536, description="IVF lists searched per query.")
    exact_scope_max: int = Field(
        20_000, ge=0, description="Scopes this small are searched exactly, from SQL."
    )
    checkpoint_every: int = Field(
        2000, ge=1, description="Save the FAISS indexes after this many changes (and on close)."
    )
    text_embedder: str = Field(
        "packaged", description="Sentence embedder for captions/questions: 'packaged', dir or id."
    )

    @model_validator(mode="after")
    def _postgres_needs_a_url(self) -> MemorySettings:
        if self.backend == "postgres" and self.url is None:
            raise ValueError("memory.backend 'postgres' needs memory.url (postgresql://...)")
        return self


class LanguageSettings(_Section):
    """The decoder that runs at event boundaries (captions) and answers questions."""

    backend: Literal["transformers", "transformers_vlm", "openai", "none"] = Field(
        "transformers",
        description=(
            "transformers: a causal LM reading the event's perception text; transformers_vlm: a "
            "vision-language model fed keyframes; openai: an OpenAI-compatible chat endpoint; "
            "none: no captions (events keep their label text)."
        ),
    )
    model: str = Field(
        "packaged",
        min_length=1,
        description="'packaged' (SmolLM2-135M-Instruct GGUF), a Hugging Face id or a local path; "
        "for openai, the served model name.",
    )
    gguf_file: str | None = Field(None, description="A GGUF file inside `model` (dir or repo).")
    model_config_json: dict[str, Any] | None = Field(
        None, description="Build a randomly initialised model from this config (tiny tests)."
    )
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    threads: int | None = Field(None, ge=1, le=512, description="CPU threads (null: torch's).")
    seed: int = 0
    trigger: Literal["event", "interval", "frame"] = Field(
        "event",
        description="When to caption: at each event boundary, every `interval_s` seconds "
        "(fixed-chunk baseline) or at every sampled frame.",
    )
    interval_s: float = Field(10.0, gt=0, description="Chunk length of the interval trigger.")
    caption_max_tokens: int = Field(40, ge=1, le=4096, description="Token budget of a caption.")
    answer_max_tokens: int = Field(160, ge=1, le=8192, description="Token budget of an answer.")
    temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy decoding.")
    related_events: int = Field(
        3, ge=0, le=50, description="Past events retrieved into each caption prompt."
    )
    answer_events: int = Field(6, ge=1, le=100, description="Events retrieved to answer with.")
    match_threshold: float = Field(
        0.45,
        ge=-1,
        le=1,
        description="Text similarity at which an event counts as showing a thing the "
        "classifier's vocabulary does not name (presence, counts, first/last).",
    )
    phrase_answers: bool = Field(
        False,
        description="Let the decoder rephrase the templated answer (checked; the template is "
        "given when the phrasing invents a time, an id, a count or a yes/no). Off by default: "
        "the packaged 135M model's phrasings were worse than the template (docs/benchmarks.md).",
    )
    intent_parser: Literal["rules", "decoder"] = Field(
        "rules",
        description="How questions are parsed: text rules, or the decoder's constrained JSON "
        "(rules stay the fallback).",
    )
    relevance_threshold: float = Field(
        0.35,
        ge=-1,
        le=1,
        description="Text similarity below which memory is 'nothing relevant' for a question.",
    )
    queue_size: int = Field(
        256, ge=1, description="Events waiting for a caption; when full the oldest is skipped."
    )
    base_url: str | None = Field(None, description="openai: e.g. http://localhost:8000/v1")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai: environment variable holding the API key."
    )
    timeout_s: float = Field(60.0, gt=0, description="openai: whole-request timeout.")
    connect_timeout_s: float = Field(5.0, gt=0, description="openai: connection timeout.")
    retries: int = Field(2, ge=0, le=10, description="openai: retries before the first token.")
    cache_dir: Path = Field(
        Path("~/.cache/eventvstream/models"),
        description="Where a GGUF model converted to safetensors is kept (fast later loads).",
    )


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

    @model_validator(mode="after")
    def _message_holds_a_frame(self) -> ServerSettings:
        if self.max_message_bytes < self.max_frame_bytes:
            raise ValueError("max_message_bytes must be at least max_frame_bytes")
        for share, whole in (
            ("max_sessions_per_key", "max_sessions"),
            ("max_uploads_per_key", "max_uploads"),
            ("max_upload_queue_bytes_per_key", "max_upload_queue_bytes"),
            ("max_questions_per_key", "max_questions"),
        ):
            if getattr(self, share) > getattr(self, whole):
                if share in self.model_fields_set:
                    raise ValueError(f"{share} must not exceed {whole}")
                setattr(self, share, getattr(self, whole))  # a default follows a lowered whole
        return self


class Settings(BaseSettings):
    """Everything the engine can be told. One instance per process (or per test)."""

    model_config = SettingsConfigDict(
        env_prefix="EVS_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    profile: str = Field("default", description="Name of the profile these settings came from.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where models run; auto = CUDA when available."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="Logging level (logs go to stderr)."
    )
    sampling: SamplingSettings = SamplingSettings()
    encoder: EncoderSettings = EncoderSettings()
    events: EventSettings = EventSettings()
    memory: MemorySettings = MemorySettings()
    language: LanguageSettings = LanguageSettings()
    server: ServerSettings = ServerSettings()
    alerts: AlertSettings = AlertSettings()

    _yaml_data: ClassVar[dict[str, Any]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _DictSource(settings_cls, cls._yaml_data))


class _DictSource(PydanticBaseSettingsSource):
    """Feeds an already-parsed YAML profile into pydantic-settings, below env and init."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _packaged_configs_dir() -> Path:
    """Profiles ship inside the wheel; in a source checkout they live in ``configs/``."""
    packaged = Path(str(resources.files("eventvstream"))) / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "configs"


def resolve_profile(profile: str | os.PathLike[str] | None) -> Path:
    """A profile is a bundled name (default, tiny, gpu) or a path to a YAML file."""
    if profile is None:
        profile = os.environ.get("EVS_CONFIG", "default")
    text = str(profile)
    if text in PROFILE_NAMES or (not text.endswith((".yaml", ".yml")) and os.sep not in text):
        path = _packaged_configs_dir() / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"unknown profile {text!r}; bundled profiles: {', '.join(PROFILE_NAMES)}"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of keys to values")
    return data


def _describe(exc: ValidationError, path: Path) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(root)"
        env = "EVS_" + "__".join(str(p).upper() for p in err["loc"] if isinstance(p, str))
        source = f" (from {env})" if env in os.environ else f" (profile {path.name})"
        lines.append(f"{key}: {err['msg']}{source}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _setting_env_names(model: type[BaseModel], prefix: str = "EVS_") -> set[str]:
    """Every ``EVS_...`` name that maps to a field (sections and their keys)."""
    names = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        names.add(env)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_env_names(annotation, env + "__")
    return names


def _check_env_names() -> None:
    """pydantic-settings ignores unknown variables; we refuse them, because a typo such as
    ``EVS_EVENTS_TAU0`` (one underscore) would otherwise be silently ignored."""
    known = _setting_env_names(Settings)
    unknown = sorted(
        key for key in os.environ if key.startswith("EVS_") and key not in known | NON_SETTING_ENV
    )
    if unknown:
        hints = []
        for key in unknown:
            guess = next((k for k in sorted(known) if k.replace("__", "_") == key), None)
            hints.append(f"{key}" + (f" (did you mean {guess}?)" if guess else ""))
        raise ConfigError(
            "unknown setting in the environment: "
            + ", ".join(hints)
            + "; nested keys use a double underscore, e.g. EVS_EVENTS__TAU0"
        )


def load_settings(profile: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load a profile, apply ``EVS_*`` env overrides, then explicit ``overrides``.

    Raises :class:`ConfigError` naming every offending key.
    """
    path = resolve_profile(profile)
    _check_env_names()
    data = _read_yaml(path)
    data.setdefault("profile", path.stem)
    Settings._yaml_data = data
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    finally:
        Settings._yaml_data = {}
