"""Model-hub plumbing shared by every loader that can fetch weights (open_clip, text embedder).

Why: on a machine with no network, the hub client retries for most of a minute before failing.
Loaders ask here first: is the file already cached, are we told to stay offline, can the host
even be reached? Then they fail in seconds with a message that says what to do instead.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "true", "yes", "on"}
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline() -> bool:
    """True when the environment asks the Hugging Face clients to stay offline."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in _OFFLINE_VARS)


def hub_host() -> str:
    """The Hugging Face endpoint's host name (honours ``HF_ENDPOINT`` via huggingface_hub)."""
    try:
        from huggingface_hub import constants

        return urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    except ImportError:
        return "huggingface.co"


def reachable(host: str, port: int = 443) -> bool:
    """Can we open a TCP connection (through the configured proxy, if any) within a few s?"""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urlparse(proxy)
        host, port = parsed.hostname or host, parsed.port or port
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def cached_file(repo_id: str, filenames: list[str]) -> str | None:
    """Path of the first of ``filenames`` already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for fname in dict.fromkeys(filenames):
        hit = try_to_load_from_cache(repo_id, fname)
        if isinstance(hit, str):
            return hit
    return None
