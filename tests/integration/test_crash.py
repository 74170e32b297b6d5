"""kill -9 durability: the memory bank loses nothing it acknowledged (scripts/crash_test.py).

Run as a subprocess because the test itself spawns and SIGKILLs children that hold the bank's
exclusive lock; five kills take a few seconds, so it is not marked slow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "crash_test.py"


def test_kill_dash_nine_loses_nothing_acknowledged(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--kills", "5", "--dir", str(tmp_path / "bank")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "0 lost" in done.stdout, report
    assert "0 duplicates" in done.stdout, report
    assert "index consistent" in done.stdout, report
