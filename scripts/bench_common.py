"""What every benchmark report starts with, in one place: the exact command, when, and on what
machine under what load (this box's 2 cores are shared, so the load average is part of the
result), and how the JSON is written. Imported by the ``scripts/bench_*.py`` next to it."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def run_record() -> dict[str, Any]:
    """``command`` (as typed, from the repository root), ``created`` (UTC), ``machine`` and
    ``load_start`` (1/5/15-minute load average when the run began)."""
    return {
        "command": "python " + shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_start": load_average(),
    }


def finish(result: dict[str, Any], path: Path | None) -> None:
    """Add ``load_end``; write the JSON when asked."""
    result["load_end"] = load_average()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
