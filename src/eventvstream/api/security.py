"""Who may talk to the server at all: Host and Origin policies, response headers, failed-auth
throttling, and the JSON shape limits. Pure decisions; :mod:`eventvstream.api.guard` applies them.

Why Host and Origin matter even on loopback: without keys (the default on 127.0.0.1) any web page
the operator opens could otherwise reach the server — a cross-origin form post or WebSocket from
``evil.example`` (browsers send those without asking), or DNS rebinding, where ``evil.example``
resolves to 127.0.0.1 and the page becomes "same origin" with the server. A Host allow-list defeats
rebinding (the browser still sends ``Host: evil.example``); an Origin check defeats the rest. Both
are cheap header comparisons and hold with keys as well. docs/security.md has the threat model.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from eventvstream.api.errors import ApiError
from eventvstream.config import ServerSettings

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
MAX_THROTTLED_ADDRESSES = 10_000  # forget the oldest beyond this (bounded memory)

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The live page: its own scripts and styles only; camera video and thumbnails are blob: URLs;
# it talks to this server only (``connect-src`` names the ws:// form of its own host too).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws://{host} wss://{host}; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# /docs and /redoc (local Swagger UI / ReDoc assets): both set inline styles and ReDoc runs a
# blob: worker; no script runs but the served files.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"
)


def csp_for(path: str, host: str) -> str:
    if path == "/" or path.startswith("/static/"):
        return PAGE_CSP.format(host=host or "localhost")
    if path in ("/docs", "/redoc") or path.startswith("/docs-assets/"):
        return DOCS_CSP
    return API_CSP


def _split_host(value: str) -> tuple[str, str | None]:
    """(host, port) of a Host header or netloc; IPv6 literals lose their brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value, None
    return host, port


class HostPolicy:
    """Which Host headers (and Origins) this server answers to."""

    def __init__(self, settings: ServerSettings, bind_host: str) -> None:
        bind = _split_host(bind_host)[0]
        self.any_host = "*" in settings.allowed_hosts or (
            not settings.allowed_hosts and bind in WILDCARD_HOSTS
        )
        listed = [h for h in settings.allowed_hosts if h != "*"]
        # "name" allows any port; "name:port" only that port
        self.names = {_split_host(h)[0] for h in listed if _split_host(h)[1] is None}
        self.host_ports = {h.strip().lower() for h in listed if _split_host(h)[1] is not None}
        if not settings.allowed_hosts:
            self.names |= {*LOOPBACK_NAMES, bind}
        self.any_origin = "*" in settings.allowed_origins
        self.origins = {o.rstrip("/").lower() for o in settings.allowed_origins if o != "*"}

    def host_allowed(self, header: str | None) -> bool:
        if self.any_host:
            return True
        if not header:
            return False  # HTTP/1.1 requires Host; a client without one is not a browser anyway
        value = header.strip().lower()
        return _split_host(value)[0] in self.names or value in self.host_ports

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (a non-browser client) passes; a browser's must be the server's own origin
        (same host:port as the request's Host) or listed in ``allowed_origins``."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
            return False  # includes the opaque "null" origin of sandboxed frames and files
        return host is not None and parts.netloc == host.strip().lower()


class AuthThrottle:
    """Failed authentications per client address in a sliding window: past ``limit``, every
    attempt from that address gets 429 (valid key or not, so the answer leaks nothing) until the
    oldest failure leaves the window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window = window_s
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0

    def check(self, address: str) -> None:
        """Raise 429 ``auth_throttled`` while ``address`` is over its failure budget."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                return
            self.refused += 1
            wait = max(1, math.ceil(times[0] + self.window - now))
        raise ApiError(
            f"too many failed authentications from this address; retry in {wait} s",
            code="auth_throttled",
            headers={"Retry-After": str(wait)},
        )

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)
            self._failures.move_to_end(address)
            while len(self._failures) > MAX_THROTTLED_ADDRESSES:
                self._failures.popitem(last=False)

    def _recent(self, address: str, now: float) -> list[float]:
        times = self._failures.setdefault(address, [])
        while times and times[0] <= now - self.window:
            times.pop(0)
        del times[: max(0, len(times) - self.limit)]  # never more than the budget
        return times


def too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` (parsed JSON) nests deeper than ``limit``. Iterative, so a hostile
    depth cannot exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children: Iterable[Any] = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def nesting_error(limit: int) -> ApiError:
    return ApiError(f"JSON nested deeper than {limit} levels", code="too_deep")
