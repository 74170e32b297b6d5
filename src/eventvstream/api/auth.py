"""API keys: who is calling, checked before anything else happens.

Keys are kept only as SHA-256 hashes (a profile may even hold just the hash, ``sha256:<hex>``),
compared with :func:`hmac.compare_digest` against every configured hash (no early exit), and never
logged. A caller is identified by a *key id* — a short prefix of its key's hash — which is the
``owner`` of everything it stores: streams, events, jobs. Without auth every caller is owner "".

Where the key comes from: ``Authorization: Bearer KEY`` for HTTP and WebSocket clients that can
set headers, or — because browsers cannot set headers on a WebSocket — the subprotocol list
``["evs.v1", "evs.key.KEY"]``; the server then accepts with the subprotocol ``evs.v1``.

No-auth mode is on by default only when the server binds a loopback address and no keys are
configured; anything else without keys is refused at start (see :func:`resolve_mode`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from eventvstream.config import ServerSettings
from eventvstream.errors import ConfigError, EvsError

SUBPROTOCOL = "evs.v1"
KEY_SUBPROTOCOL_PREFIX = "evs.key."
KEY_ID_CHARS = 12
_HASH = re.compile(r"^sha256:([0-9a-fA-F]{64})$")

Mode = Literal["required", "off"]


class AuthError(EvsError):
    """Missing or wrong API key (HTTP 401; a WebSocket is refused before accept)."""

    code = "unauthorized"


@dataclass(frozen=True)
class Principal:
    owner: str  # key id, or "" without auth
    authenticated: bool


ANONYMOUS = Principal("", False)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(digest: str) -> str:
    """The public name of a key: a prefix of its hash (safe to log and to store as owner)."""
    return "k_" + digest[:KEY_ID_CHARS]


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_mode(settings: ServerSettings, host: str | None = None) -> Mode:
    """``auto``: keys when any are configured, else no-auth on loopback only. Raises
    ConfigError for a setup that would expose an unauthenticated server."""
    host = host or settings.host
    if settings.auth == "off":
        return "off"
    if settings.api_keys:
        return "required"
    if settings.auth == "required":
        raise ConfigError("server.auth is 'required' but server.api_keys is empty")
    if is_loopback(host):
        return "off"
    raise ConfigError(
        f"refusing to serve on {host} without API keys: set EVS_SERVER__API_KEYS "
        "(a JSON list), bind 127.0.0.1, or pass --insecure-no-auth"
    )


class Authenticator:
    def __init__(self, settings: ServerSettings, mode: Mode) -> None:
        self.mode = mode
        self._hashes: list[str] = []
        for entry in settings.api_keys:
            match = _HASH.match(entry)
            self._hashes.append(match.group(1).lower() if match else _digest(entry))

    @property
    def key_ids(self) -> list[str]:
        return [key_id(h) for h in self._hashes]

    def check(self, key: str | None) -> Principal:
        """The principal for ``key``; raises AuthError when auth is on and it is not valid."""
        if self.mode == "off":
            return ANONYMOUS
        if not key:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        digest = _digest(key)
        found = None
        for known in self._hashes:  # compare with every hash: timing says nothing about which
            if hmac.compare_digest(digest, known):
                found = known
        if found is None:
            raise AuthError("invalid API key")
        return Principal(key_id(found), True)


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def websocket_key(authorization: str | None, subprotocols: list[str]) -> tuple[str | None, bool]:
    """(key, offered evs.v1) for a WebSocket upgrade: the header wins over the subprotocol."""
    key = bearer(authorization)
    offered = SUBPROTOCOL in subprotocols
    if key is None:
        for proto in subprotocols:
            if proto.startswith(KEY_SUBPROTOCOL_PREFIX):
                key = proto[len(KEY_SUBPROTOCOL_PREFIX) :] or None
                break
    return key, offered
