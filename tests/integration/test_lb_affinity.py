"""The reference deployment's nginx configuration (docker/lb/nginx.conf), run for real by
Debian's nginx in front of two small HTTP backends that answer with their name:

- every request under ``/v1/streams/{id}/`` for one stream reaches the same backend, and the
  streams spread over both;
- WebSocket upgrades pass through (the Upgrade/Connection headers reach the backend);
- when a backend dies, its streams go to the other one (consistent hashing + retry).

The backends stand in for ``evs serve`` replicas only to see *where* nginx routes (the lease
logic itself runs against real replicas in tests/e2e/test_replicas.py). Skips without nginx
(``apt-get install nginx-light``)."""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "docker" / "lb" / "nginx.conf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    def __init__(self, name: str) -> None:
        self.name, self.port = name, _free_port()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upgrade = self.headers.get("Upgrade", "")
                body = f"{backend.name} {upgrade}".strip().encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def balancer() -> Iterator[tuple[str, list[Backend]]]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    backends = [Backend("evs-a"), Backend("evs-b")]
    port = _free_port()
    root = Path(tempfile.mkdtemp(prefix="evs-lb-"))
    conf = CONF.read_text()
    for backend in backends:
        conf = conf.replace(f"{backend.name}:8000", f"127.0.0.1:{backend.port}")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("pid /run/nginx.pid;", f"pid {root}/nginx.pid;")
    conf = re.sub(r"access_log /var/log/nginx/access.log;", "access_log off;", conf)
    conf = re.sub(r"\n\s*resolver [^;]+;", "", conf)  # Docker's resolver is not here
    (root / "nginx.conf").write_text(conf)
    errors = f"error_log {root}/error.log;"
    proc = subprocess.Popen(
        [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", f"daemon off; {errors}"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{url}/lb-healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"nginx did not start: {(root / 'error.log').read_text()}")
                time.sleep(0.1)
        yield url, backends
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for backend in backends:
            with contextlib.suppress(OSError):
                backend.stop()
        shutil.rmtree(root, ignore_errors=True)


def _get(url: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_streams_stick_to_one_replica_and_move_when_it_dies(balancer) -> None:
    url, (a, _b) = balancer
    streams = [f"cam{i}" for i in range(20)]
    where = {}
    for stream in streams:
        seen = {_get(f"{url}/v1/streams/{stream}/{path}") for path in ("ws", "events", "frames")}
        seen |= {_get(f"{url}/v1/streams/{stream}/events?q=x") for _ in range(3)}
        assert len(seen) == 1, (stream, seen)  # affinity: one replica per stream
        where[stream] = seen.pop()
    assert set(where.values()) == {"evs-a", "evs-b"}, where  # and the streams spread

    upgraded = _get(f"{url}/v1/streams/cam0/ws", {"Upgrade": "websocket", "Connection": "Upgrade"})
    assert upgraded == f"{where['cam0']} websocket"  # the upgrade reaches the replica

    others = {_get(f"{url}/v1/streams") for _ in range(6)}  # not a stream path: any replica
    assert others == {"evs-a", "evs-b"}

    a.stop()  # evs-a dies: its streams go to evs-b, the others stay
    for stream in streams:
        assert _get(f"{url}/v1/streams/{stream}/ws") == "evs-b", stream
