"""Settings: profiles, env overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from eventvstream.config import PROFILE_NAMES, load_settings, resolve_profile
from eventvstream.errors import ConfigError


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_bundled_profiles_load(name):
    settings = load_settings(name)
    assert settings.profile == name


def test_default_profile_is_offline_cpu_efficientnet():
    settings = load_settings("default")
    assert settings.encoder.backend == "efficientnet"
    assert settings.encoder.pretrained == "packaged"
    assert settings.sampling.fps == 2.0


def test_env_overrides_nested_keys(monkeypatch):
    monkeypatch.setenv("EVS_SAMPLING__FPS", "4")
    monkeypatch.setenv("EVS_EVENTS__MIN_EVENT_S", "2.5")
    settings = load_settings("default")
    assert settings.sampling.fps == 4.0
    assert settings.events.min_event_s == 2.5


def test_explicit_overrides_beat_env(monkeypatch):
    monkeypatch.setenv("EVS_DEVICE", "cuda")
    assert load_settings("default", device="cpu").device == "cpu"


def test_invalid_env_value_names_the_key(monkeypatch):
    monkeypatch.setenv("EVS_SAMPLING__FPS", "-1")
    with pytest.raises(ConfigError, match=r"sampling\.fps.*EVS_SAMPLING__FPS"):
        load_settings("default")


def test_invalid_yaml_value_names_the_key(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text("encoder:\n  backend: resnet\n")
    with pytest.raises(ConfigError, match=r"encoder\.backend"):
        load_settings(profile)


def test_unknown_key_is_rejected(tmp_path):
    profile = tmp_path / "typo.yaml"
    profile.write_text("events:\n  min_evnt_s: 3\n")
    with pytest.raises(ConfigError, match=r"events\.min_evnt_s"):
        load_settings(profile)


def test_cross_field_rule(tmp_path):
    profile = tmp_path / "lengths.yaml"
    profile.write_text("events:\n  min_event_s: 10\n  max_event_s: 5\n")
    with pytest.raises(ConfigError, match="max_event_s must be greater"):
        load_settings(profile)


def test_missing_and_unknown_profiles(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve_profile("nonexistent")
    with pytest.raises(ConfigError, match="not found"):
        resolve_profile(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("events: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken)


def test_unknown_env_variable_is_rejected_with_a_hint(monkeypatch):
    monkeypatch.setenv("EVS_EVENTS_TAU0", "1000")  # one underscore: a typo
    with pytest.raises(ConfigError, match=r"EVS_EVENTS_TAU0 \(did you mean EVS_EVENTS__TAU0\?\)"):
        load_settings("default")


def test_non_setting_evs_variables_are_allowed(monkeypatch):
    monkeypatch.setenv("EVS_CONFIG", "default")
    monkeypatch.setenv("EVS_UPDATE_GOLDEN", "0")
    assert load_settings().profile == "default"
