"""`evs serve`'s exit when a worker thread is still running after the drain.

A daemon thread still inside native code while the interpreter finalises can abort the process
("terminate called without an active exception", exit 134) or hang it until the container's
SIGKILL; found by scripts/docker_smoke.sh after a drain that timed out. The server then leaves
without finalisation, with the drain's exit code and its logs flushed.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

# Each case starts a Python that imports the package (seconds on a loaded 2-core machine).
pytestmark = pytest.mark.slow

SCRIPT = """
import atexit, logging, sys, threading, time
from eventvstream.cli.serve import exit_now_if_threads_linger
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
atexit.register(lambda: print("finalised"))
if sys.argv[1] == "busy":
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
logging.getLogger("t").info("drained")
exit_now_if_threads_linger(int(sys.argv[2]))
print("returned")
"""


def run(mode: str, code: int) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(code)], capture_output=True, text=True, timeout=120
    )
    return out, time.monotonic() - started


def test_lingering_thread_exits_at_once_with_the_code_and_flushed_logs() -> None:
    out, _ = run("busy", 3)
    assert out.returncode == 3, out.stderr
    assert "drained" in out.stdout  # the log line was flushed before leaving
    assert "returned" not in out.stdout and "finalised" not in out.stdout


def test_no_lingering_thread_returns_normally() -> None:
    out, _ = run("idle", 0)
    assert out.returncode == 0, out.stderr
    assert "returned" in out.stdout and "finalised" in out.stdout
