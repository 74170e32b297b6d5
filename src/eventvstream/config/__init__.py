"""The one settings model (see :mod:`eventvstream.config.loading` for where settings come from).

Split by part of the system so each file stays readable: ``pipeline`` (sampling, encoder,
events, memory, language), ``serving`` (server, alerts, MQTT), ``loading`` (the root model,
profiles, ``EVS_*`` variables).
"""

from eventvstream.config.loading import (
    NON_SETTING_ENV,
    PROFILE_NAMES,
    Settings,
    load_settings,
    resolve_profile,
)
from eventvstream.config.pipeline import (
    EncoderSettings,
    EventSettings,
    LanguageSettings,
    MemorySettings,
    SamplingSettings,
)
from eventvstream.config.serving import AlertSettings, MqttSettings, ServerSettings

__all__ = [
    "NON_SETTING_ENV",
    "PROFILE_NAMES",
    "AlertSettings",
    "EncoderSettings",
    "EventSettings",
    "LanguageSettings",
    "MemorySettings",
    "MqttSettings",
    "SamplingSettings",
    "ServerSettings",
    "Settings",
    "load_settings",
    "resolve_profile",
]
