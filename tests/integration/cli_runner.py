"""Run `evs` the way a user does: a real subprocess with this interpreter (shared by CLI tests)."""

from __future__ import annotations

import os
import subprocess
import sys


def evs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventvstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
