"""Source URLs: which strings are live sources, and how to show one without its secrets.

Camera URLs carry credentials (``rtsp://admin:hunter2@10.0.0.5/stream1``, ``?token=…``). Every
log line, error message, status and API response names a source through :func:`redact_url`, so
a password never leaves the process that was given it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: URL schemes read as live (pull) sources. ``file:`` and plain paths are files.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "srt", "tcp"})

#: Query parameters whose values are secrets (camera and restreamer conventions).
SECRET_PARAMS = frozenset(
    {"password", "pass", "pwd", "passwd", "token", "access_token", "auth", "key", "apikey",
     "api_key", "secret", "signature", "sig", "user", "username", "usr", "login"}
)  # fmt: skip

_DEVICE = re.compile(r"^/dev/video\d+$")
_MASK = "***"


def is_device(source: str) -> bool:
    """A V4L2 capture device such as ``/dev/video0``."""
    return bool(_DEVICE.match(source))


def is_live_source(source: str) -> bool:
    """Whether ``source`` is pulled live (a URL with a network scheme, or a capture device)
    rather than opened as a video file."""
    if is_device(source):
        return True
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    return scheme in LIVE_SCHEMES


def redact_url(url: str) -> str:
    """``url`` with its password, user name and secret query values replaced by ``***``.

    >>> redact_url("rtsp://admin:hunter2@10.0.0.5:554/Streaming/Channels/101?token=abc&x=1")
    'rtsp://***:***@10.0.0.5:554/Streaming/Channels/101?token=***&x=1'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _MASK  # unparseable: show nothing rather than a secret
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        masked = f"{_MASK}:{_MASK}" if ":" in userinfo else _MASK
        netloc = f"{masked}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, _MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """``text`` (e.g. an FFmpeg error) with any appearance of ``url`` or its secrets masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text.replace(url, _MASK)
    text = text.replace(url, redact_url(url))
    secrets = [parts.password, parts.username]
    secrets += [v for k, v in parse_qsl(parts.query) if k.lower() in SECRET_PARAMS]
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, _MASK)
    return text
