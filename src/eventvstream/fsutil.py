"""Atomic file replacement: the one way this project rewrites a file in place.

A reader (or the next process after a crash) must see either the old file or the whole new one,
never half of one, and a file reported as saved must survive a crash. The recipe:

1. write a temporary file *in the same directory* (``os.replace`` is atomic only within one
   file system), named ``<name>.tmp``;
2. flush and ``fsync`` it, so its bytes are on disk before the rename can be;
3. ``os.replace`` it over the target (atomic on POSIX);
4. ``fsync`` the directory, so the rename itself is durable.

The temporary name is fixed, not random: a write killed halfway leaves at most one stale
``<name>.tmp`` per file, which the next write of that file simply overwrites. The price is that
two concurrent writers of the *same* target must be serialised by the caller (every caller here
holds a lock or is the only writer of its directory).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    """Make renames and creations inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to (for writers that want a file
    name, like ``faiss.write_index``); on a clean exit it is fsynced and replaces ``path``
    durably. On an exception the temporary file is removed and ``path`` is left as it was."""
    target = Path(path)
    tmp = target.with_name(target.name + TMP_SUFFIX)
    try:
        yield tmp
        with open(tmp, "rb") as handle:  # fsync works on a read-only descriptor too
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8), atomically and durably."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(payload)
