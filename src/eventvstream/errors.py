"""One error hierarchy for the whole package.

Every error a caller can cause carries a stable machine-readable ``code`` and a human message, so
the CLI, and later the HTTP/WebSocket layers, can report it in one envelope without guessing.
"""

from __future__ import annotations


class EvsError(Exception):
    """Base class: something the caller can act on (bad input, bad config, missing model)."""

    code = "evs_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code

    def to_dict(self) -> dict[str, str]:
        """The error envelope: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


class ConfigError(EvsError):
    """A profile or setting is invalid; the message names the key."""

    code = "invalid_config"


class MediaError(EvsError):
    """A video or image could not be read (missing, corrupt, truncated, unsupported)."""

    code = "media_error"


class DecoderCrashed(MediaError):
    """The isolated video decoder process died (e.g. a segfault in decord on a corrupt stream)."""

    code = "decoder_crashed"


class DecodeTimeout(MediaError):
    """The isolated video decoder stopped making progress and was killed."""

    code = "decode_timeout"


class ModelLoadError(EvsError):
    """A model could not be loaded (bad name, bad path, missing weights, no network for a hub)."""

    code = "model_load_error"


class DecoderError(EvsError):
    """A language decoder refused or failed a generation (e.g. an HTTP 4xx from an endpoint)."""

    code = "decoder_error"


class DecoderUnavailable(DecoderError):
    """The decoder endpoint cannot be reached or kept failing after every retry."""

    code = "decoder_unavailable"
