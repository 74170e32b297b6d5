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
    Field,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from eventvstream.config.pipeline import (
    EncoderSettings,
    EventSettings,
    LanguageSettings,
    MemorySettings,
    SamplingSettings,
)
from eventvstream.config.serving import AlertSettings, ServerSettings
from eventvstream.errors import ConfigError

PROFILE_NAMES = ("default", "tiny", "gpu", "remote")

#: ``EVS_*`` variables that are not settings: profile choice, setup extras, golden-file refresh.
NON_SETTING_ENV = frozenset({"EVS_CONFIG", "EVS_EXTRAS", "EVS_TORCH_INDEX", "EVS_UPDATE_GOLDEN"})


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
    return Path(__file__).resolve().parents[3] / "configs"


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
