"""Real peers for the alert tests: an HTTP webhook receiver and a Mosquitto broker.

The receiver is a real HTTP server on a loopback port. It can refuse the first N requests (503),
checks every ``X-EVS-Signature`` with the watch's secret, and is idempotent the way a careful
receiver is: it counts each ``Idempotency-Key`` once (``unique``) but keeps every request
(``requests``), so a test sees both "nothing lost" and "how many retries".
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.config import AlertSettings, MemorySettings
from eventvstream.serving.alerts.webhook import SIGNATURE_HEADER, verify_signature

# The receivers below listen on 127.0.0.1, which webhooks may not reach by default (SSRF guard,
# serving/alerts/egress.py): the tests allow it explicitly, as an operator would.
LOCAL_RECEIVERS: dict[str, Any] = {"webhook_allow_hosts": ["127.0.0.1"]}
FAST: dict[str, Any] = dict(webhook_backoff_s=0.05, webhook_backoff_max_s=0.2, **LOCAL_RECEIVERS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(
        self,
        *,
        refuse_first: int = 0,
        secret: str | None = None,
        port: int = 0,
        redirect_to: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.refuse_first = refuse_first
        self.retry_after = retry_after  # the Retry-After header of each refusal (503)
        self.redirect_to = redirect_to  # answer every request with a 302 to this URL
        self.secret = secret
        self.requests: list[dict[str, Any]] = []
        self.unique: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver._handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        now = time.time()
        with self.lock:
            self.requests.append({"at": now, "headers": dict(handler.headers), "body": body})
            refuse = len(self.requests) <= self.refuse_first
        if refuse:
            handler.send_response(503)
            if self.retry_after is not None:
                handler.send_header("Retry-After", self.retry_after)
            handler.end_headers()
            return
        if self.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", self.redirect_to)
            handler.end_headers()
            return
        if self.secret is not None:
            header = handler.headers.get(SIGNATURE_HEADER, "")
            if not verify_signature(self.secret, header, body):
                with self.lock:
                    self.bad_signatures += 1
                handler.send_response(401)
                handler.end_headers()
                return
        key = handler.headers.get("Idempotency-Key", "")
        with self.lock:
            if key in self.unique:
                self.duplicates += 1
            else:
                self.unique[key] = {"at": now, "body": json.loads(body)}
        handler.send_response(204)
        handler.end_headers()

    def wait_for(self, n: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.unique) >= n:
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mosquitto:
    """Debian's mosquitto on a free loopback port with a temporary config (anonymous)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = port or free_port()
        config = directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.log = directory / "mosquitto.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [binary, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start: " + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


class Subscriber:
    """A paho client that records every message on ``<prefix>/#``."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)

        def on_connect(c: Any, *args: Any) -> None:
            c.subscribe(f"{prefix}/#", qos=1)

        def on_subscribe(*args: Any) -> None:
            self.ready.set()

        def on_message(c: Any, userdata: Any, message: Any) -> None:
            with self.lock:
                self.messages.append((message.topic, message.payload, bool(message.retain)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        assert self.ready.wait(10), "subscriber did not subscribe"

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def wait(self, topic: str, n: int = 1, timeout: float = 15.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(topic)
            if len(found) >= n:
                return found
            time.sleep(0.02)
        return self.on(topic)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stored_event(start: float, end: float, label: str, dim: int = 32, seed: int = 0) -> dict:
    """An event as the memory bank stores it (random visual vector: nothing merges)."""
    vector = np.random.default_rng(seed + int(start * 10)).standard_normal(dim).astype(np.float32)
    return {
        "start": start,
        "end": end,
        "frames": 4,
        "embedding": vector / np.linalg.norm(vector),
        "keyframes": [{"t": start, "frame_index": int(start * 2), "labels": [[label, 0.9]]}],
        "labels": [[label, 0.9]],
        "boundaries": {},
    }


class Side:
    """One replica's part of a shared PostgreSQL database, in this process: its bank (own data
    dir), liveness lock, ``alerts`` role and alert engine (``settings``: fast webhook retries to
    loopback receivers unless given). The role moves only when a test ticks it, as the replica
    heartbeat would; closing ``lock`` is the test's kill -9 (PostgreSQL drops the lock)."""

    def __init__(
        self, url: str, directory: Path, name: str, settings: AlertSettings | None = None
    ) -> None:
        from eventvstream.memory import MemoryBank
        from eventvstream.memory.leases import LeaseStore, LivenessLock
        from eventvstream.memory.roles import RoleLeases
        from eventvstream.serving.alerts.engine import AlertEngine
        from eventvstream.serving.roles import Role

        memory = MemorySettings(
            data_dir=directory / name, backend="postgres", url=url, checkpoint_every=10**9
        )
        self.bank = MemoryBank(memory)
        backend = self.bank.store.backend
        leases = LeaseStore(backend, name, 30.0)
        self.lock = LivenessLock(url, leases.key)
        self.lock.ensure()
        leases.heartbeat()
        self.role = Role(RoleLeases(backend, name, 30.0), "alerts")
        settings = settings or AlertSettings(**FAST)
        self.engine = AlertEngine(settings, self.bank, None, role=self.role)

    def store(self, start: float, end: float, stream: str = "door") -> int:
        return self.bank.add(stored_event(start, end, "thing"), stream=stream, owner="k1").id

    def close(self) -> None:
        self.engine.close()
        self.lock.close()
        self.bank.close()


def until(check: Any, timeout: float = 20.0) -> Any:
    """``check()``'s first truthy value, polled every 50 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("not in time")
