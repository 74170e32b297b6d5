"""The SSRF guard at send time, against a real HTTP receiver on 127.0.0.1: the webhook client
connects only to allowed addresses (after its own DNS resolution), a name that resolves to a
private address is refused, redirects are not followed, and a refused delivery fails at once
(no retries) while the receiver sees nothing."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_support import LOCAL_RECEIVERS, Receiver, stored_event

from eventvstream.config import AlertSettings, MemorySettings
from eventvstream.errors import EvsError
from eventvstream.memory import MemoryBank
from eventvstream.serving.alerts.egress import WebhookPolicy, guarded_client, refused
from eventvstream.serving.alerts.engine import AlertEngine
from eventvstream.serving.alerts.spec import WatchCreate

FAST = dict(webhook_backoff_s=0.05, webhook_backoff_max_s=0.2)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_the_guarded_client_never_opens_a_socket_to_loopback(receiver):
    strict = guarded_client(WebhookPolicy(), 5.0)
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(httpx.ConnectError) as error:
            strict.post(url, content=b"{}")
        assert refused(error.value) is not None, error.value
    assert receiver.requests == []  # refused before connecting
    allowed = guarded_client(WebhookPolicy(allow_hosts=["127.0.0.1"]), 5.0)
    assert allowed.post(receiver.url, content=b"{}").status_code == 204
    assert len(receiver.requests) == 1


def open_engine(data: Path, **settings) -> tuple[MemoryBank, AlertEngine]:
    bank = MemoryBank(MemorySettings(data_dir=data, checkpoint_every=10**9))
    return bank, AlertEngine(AlertSettings(**(FAST | settings)), bank, None)


def duration_watch(engine: AlertEngine, url: str) -> dict:
    body = WatchCreate(stream="door", text="longer than 1 second", webhook={"url": url})
    return engine.watches.create("k1", body)


def wait_status(engine: AlertEngine, want: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alerts = engine.outbox.alerts("k1")
        if alerts:
            (status,) = engine.outbox.delivery_status(alerts[0].id)
            if status["status"] == want:
                return status
        time.sleep(0.02)
    raise AssertionError(f"no delivery became {want!r}")


def test_a_name_rebound_to_loopback_after_creation_is_refused(tmp_path, receiver, monkeypatch):
    """DNS rebinding: ``hooks.example`` resolves to a public address when the watch is created
    and to 127.0.0.1 when the alert is sent. The resolver is faked (no DNS server can run
    here); the receiver, the client and the socket are real."""
    answers = {"hooks.example": "93.184.216.34"}
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    bank, engine = open_engine(tmp_path)
    try:
        duration_watch(engine, f"http://hooks.example:{receiver.port}/hook")  # public: accepted
        answers["hooks.example"] = "127.0.0.1"  # the attacker's DNS answer changes
        bank.add(stored_event(0.0, 5.0, "thing"), stream="door", owner="k1")
        status = wait_status(engine, "failed")
        assert status["attempts"] == 1 and status["last_error"].startswith("refused"), status
        assert "127.0.0.1" in status["last_error"]
        assert receiver.requests == []
    finally:
        engine.close()
        bank.close()


def test_tightening_the_policy_stops_deliveries_to_watches_made_before(tmp_path, receiver):
    bank, engine = open_engine(tmp_path, **LOCAL_RECEIVERS)
    duration_watch(engine, receiver.url)
    engine.close()
    bank.close()
    bank, engine = open_engine(tmp_path)  # the operator removed the allowance
    try:
        with pytest.raises(EvsError) as error:
            duration_watch(engine, receiver.url)
        assert error.value.code == "webhook_url_forbidden"
        bank.add(stored_event(0.0, 5.0, "thing"), stream="door", owner="k1")
        status = wait_status(engine, "failed")
        assert status["attempts"] == 1 and "non-public" in status["last_error"], status
        assert receiver.requests == []
    finally:
        engine.close()
        bank.close()


def test_redirects_are_not_followed(tmp_path, receiver):
    redirector = Receiver(redirect_to=receiver.url)
    bank, engine = open_engine(tmp_path, webhook_max_attempts=2, **LOCAL_RECEIVERS)
    try:
        duration_watch(engine, redirector.url)
        bank.add(stored_event(0.0, 5.0, "thing"), stream="door", owner="k1")
        status = wait_status(engine, "failed")
        assert status["attempts"] == 2 and status["last_error"] == "HTTP 302", status
        assert len(redirector.requests) == 2 and receiver.requests == []
    finally:
        engine.close()
        bank.close()
        redirector.close()


def test_a_receivers_odd_retry_after_is_ignored(tmp_path):
    """``Retry-After: ²`` (a digit to ``str.isdigit``, not to ``float``) raised in the sender
    (logged with a traceback, recorded as a ValueError); it is now ignored like any other
    unparseable value and the refusal is recorded as what it is."""
    refuser = Receiver(refuse_first=10, retry_after="\xb2")
    bank, engine = open_engine(tmp_path, webhook_max_attempts=2, **LOCAL_RECEIVERS)
    try:
        duration_watch(engine, refuser.url)
        bank.add(stored_event(0.0, 5.0, "thing"), stream="door", owner="k1")
        status = wait_status(engine, "failed")
        assert status["attempts"] == 2 and status["last_error"] == "HTTP 503", status
        assert len(refuser.requests) == 2
    finally:
        engine.close()
        bank.close()
        refuser.close()
