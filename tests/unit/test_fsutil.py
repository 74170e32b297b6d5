"""The one atomic-write helper: old or new content, never half, and durable in order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eventvstream import fsutil
from eventvstream.fsutil import atomic_path, write_atomic


def test_write_atomic_creates_and_replaces_without_leaving_a_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, '{"a": 1}')
    write_atomic(target, b"\x00binary")
    assert target.read_bytes() == b"\x00binary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "index.faiss"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half of the n")
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.faiss"]


def test_a_stale_temp_from_a_killed_writer_is_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "streams.json"
    (tmp_path / "streams.json.tmp").write_bytes(b"left by kill -9, longer than the new content")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert not (tmp_path / "streams.json.tmp").exists()


def test_file_is_fsynced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order is the whole point: data on disk, then the rename, then the rename on disk."""
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        calls.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    monkeypatch.setattr(fsutil.os, "replace", replace)
    write_atomic(tmp_path / "x.json", "{}")
    assert calls == ["fsync file", "replace", "fsync dir"]
