"""A real ``evs serve`` subprocess for end-to-end tests and benchmarks: start it on a free
loopback port, wait until ``/readyz`` answers 200, ``kill -9`` it, stop it, talk JSON to it.

Why one harness: the kill -9 tests, the alerts benchmark and the server benchmark each need the
same few steps (free port, spawn, poll until ready, SIGKILL or terminate, small JSON requests
that never raise), and three copies had already drifted in their timeouts and environments.
The child runs the same ``eventvstream`` source as the caller (its ``src`` directory goes first on
``PYTHONPATH``), so a worktree's tests exercise that worktree's server.

Not product code: nothing in ``eventvstream`` imports it. Failures raise :class:`ServerStartError`
(with the tail of the server's log), which pytest reports as a failing test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 300.0  # generous: on a loaded 2-core box a tiny server has taken > 120 s
LOG_TAIL_CHARS = 4000


class ServerStartError(RuntimeError):
    """``evs serve`` exited or never became ready; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(
    url: str,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """One request with an optional JSON body: ``(status, parsed JSON or error text)``.
    Never raises for HTTP or connection errors: a refused connection is ``(0, None)``, which
    is what a poll against a dead or starting server wants."""
    data = json.dumps(body).encode() if body is not None else None
    sent = dict(headers or {})
    if data is not None:
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError:
        return 0, None


def _child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}
    source = Path(__file__).resolve().parents[2]  # .../src when run from a checkout
    if source.name == "src":
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(source), env.get("PYTHONPATH", "")) if p
        )
    return env


class ServerProcess:
    """One ``evs serve --config <config>`` process (a profile name or a YAML path)."""

    def __init__(
        self,
        config: str | Path,
        log_path: Path,
        *,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        append_log: bool = False,
        wait: bool = True,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path
        self.data_dir = data_dir
        cmd = [sys.executable, "-m", "eventvstream.cli", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        if data_dir is not None:
            cmd += ["--data-dir", str(data_dir)]
        with open(log_path, "ab" if append_log else "wb") as out:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=_child_env(env), cwd=cwd
            )
        if wait:
            self.wait_ready(ready_timeout_s)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log_text()[-chars:]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll ``/readyz`` until 200; raise (and kill the process) if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while http_json(f"{self.url}/readyz", timeout=5)[0] != 200:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"evs serve exited with {self.proc.returncode} before ready:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerStartError(
                    f"evs serve not ready after {timeout_s:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs (the crash the durability tests are about)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    @property
    def killed(self) -> bool:
        return self.proc.returncode == -signal.SIGKILL

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (a graceful drain), then SIGKILL if it outlives ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def rss_mib(self) -> float:
        """Resident memory of the server process now (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far (Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def request(
        self, path: str, method: str = "GET", body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        """:func:`http_json` against this server, with ``Authorization: Bearer <key>``."""
        headers = {"Authorization": f"Bearer {key}"} if key else None
        return http_json(self.url + path, method, body, headers)
