"""Settings sections of the file pipeline: sampling, encoder, events, memory, language.

Each section is its own model so a profile or an ``EVS_*`` variable can address it by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from eventvstream.config.base import Section as _Section


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
    runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        "auto",
        description=(
            "efficientnet only: what runs the forward. auto = ONNX Runtime for fp32 on the CPU "
            "when installed (about 3x faster than torch there, same features), else torch."
        ),
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
    # 7 (was 5): chosen on the real-footage dev set, the one change that removed every false
    # boundary on lively single shots there; held-out 0 (was 3 in 2.3 min), generated set
    # unchanged (docs/benchmarks.md, issue 13).
    tau0: float = Field(7.0, gt=0, description="Base threshold on the fused, normalised score.")
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
    cut_floor: float = Field(
        0.25, ge=0, description="Smallest frame jump (standardised thumbnail) that can be a cut."
    )
    cut_lookback_s: float = Field(
        1.5, ge=0, description="Exact cuts: also search this far before the sample that fired."
    )
    cut_radius: int = Field(
        6, ge=0, description="Exact cuts: frames either side a jump must dominate (0: all)."
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
        "given when the phrasing invents a time, an id, a count, a yes/no or a thing). Off by "
        "default: the packaged 135M model's phrasings were worse than the template "
        "(docs/benchmarks.md).",
    )
    check_content: bool = Field(
        True,
        description="Reject a phrased answer or a text-only decoder's caption that names "
        "something its evidence does not (the events' labels, look and captions, the "
        "question's words); the template is given instead. Off only to measure the check.",
    )
    intent_parser: Literal["rules", "decoder"] = Field(
        "rules",
        description="How questions are parsed: text rules, or the decoder's constrained JSON "
        "(rules stay the fallback).",
    )
    timezone: str = Field(
        "UTC",
        min_length=1,
        description="The clock of live streams' questions and answers: 'since 10:30' is read "
        "and answers state '10:31:05 to 10:31:14 UTC' in this zone. An IANA name "
        "('Europe/Berlin'), 'UTC', or 'local' (the server process's zone: TZ, /etc/localtime).",
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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """A typo ('Europe/Berln') fails at start-up, not at the first question."""
        if value.strip().lower() in ("utc", "local"):  # the rest: IANA names
            return value.strip()
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}: an IANA name such as 'Europe/Berlin', 'UTC' "
                "or 'local'"
            ) from exc
        return value.strip()
