"""Limits that keep one client from taking the server down: sizes and request rates.

* Sizes are checked on the declared ``Content-Length`` first (a cheap early 413) and again while
  the body streams in, because a client may lie or send chunked; an upload is written to a temp
  file as it arrives — never held in memory — and aborted the moment it passes the limit.
* Request rate: a token bucket per API key (``rate_per_s`` refill, ``burst`` capacity); an empty
  bucket answers 429 with ``Retry-After`` saying when a token will be back.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import Request

from eventvstream.api.errors import ApiError
from eventvstream.config import Settings
from eventvstream.errors import EvsError

MAX_BUCKETS = 10_000  # forget idle callers beyond this many (bounded memory)
SPOOL_PREFIX = "evs-upload-"


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()
        self.limited = 0

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else seconds until the next token."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                self.limited += 1
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.pop(next(iter(self._buckets)))
        return wait

    def check(self, key: str) -> None:
        wait = self.take(key)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(
                f"too many requests; retry in {retry} s",
                code="rate_limited",
                headers={"Retry-After": str(retry)},
            )


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _too_large(what: str, limit: int, code: str) -> ApiError:
    return ApiError(f"{what} is larger than the {limit} byte limit", code=code)


async def read_limited(request: Request, limit: int, *, what: str, code: str) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` bytes."""
    length = declared_length(request)
    if length is not None and length > limit:
        raise _too_large(what, limit, code)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(what, limit, code)
        chunks.append(chunk)
    return b"".join(chunks)


def spool_dir(settings: Settings) -> Path:
    """Where uploads are spooled: ``server.upload_dir``, else ``<memory.data_dir>/uploads`` —
    inside the data directory, which one server at a time owns, so leftovers can be removed at
    start without touching another server's files."""
    configured = settings.server.upload_dir
    return (configured or settings.memory.data_dir / "uploads").expanduser()


def clean_spool(directory: Path, before: float) -> int:
    """Remove ``evs-upload-*`` files last written before ``before`` (a killed run's leftovers);
    returns how many. Blocking."""
    removed = 0
    for path in directory.glob(f"{SPOOL_PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                removed += 1
    return removed


async def spool_to_file(
    chunks: AsyncIterator[bytes],
    limit: int,
    *,
    what: str,
    directory: Path | None = None,
    suffix: str = "",
    over_limit: Callable[[], EvsError] | None = None,
) -> tuple[Path, str, int]:
    """Write a streamed body to a temp file in ``directory``: (path, sha256 hex, size). Past
    ``limit`` the file is deleted and ``over_limit()`` raised (default 413). Disk writes are
    small and sequential; they stay on the loop."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=suffix, dir=directory)
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise (over_limit or (lambda: _too_large(what, limit, "upload_too_large")))()
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size
