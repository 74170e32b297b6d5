"""The pure decisions behind the server's hardening (api/security.py, api/quotas.py, the
WebSocket Outbox and the error clipping): fast checks of the edge cases the e2e tests
(tests/e2e/test_security_*.py) cannot cover one by one."""

from __future__ import annotations

import asyncio
import time

import pytest

from eventvstream.api.errors import ApiError, clip, field_errors
from eventvstream.api.outbox import Close, Outbox
from eventvstream.api.quotas import Quotas
from eventvstream.api.security import AuthThrottle, HostPolicy, csp_for, too_deep
from eventvstream.config import ServerSettings


def policy(bind: str = "127.0.0.1", **server: object) -> HostPolicy:
    return HostPolicy(ServerSettings(**server), bind)


def test_default_hosts_are_loopback_names_and_the_bind_address() -> None:
    hosts = policy("10.1.2.3")
    for ok in ("127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000", "10.1.2.3:8000"):
        assert hosts.host_allowed(ok), ok
    for bad in ("evil.example", "rebind.evil.example:8000", "127.0.0.1.evil.example", "", None):
        assert not hosts.host_allowed(bad), bad


def test_wildcard_bind_and_explicit_hosts() -> None:
    assert policy("0.0.0.0").host_allowed("anything.example")
    listed = policy("0.0.0.0", allowed_hosts=["evs.example.com", "10.0.0.5:8443"])
    assert listed.host_allowed("evs.example.com:443") and listed.host_allowed("10.0.0.5:8443")
    assert not listed.host_allowed("10.0.0.5:80") and not listed.host_allowed("localhost")
    assert policy(allowed_hosts=["*"]).host_allowed("x.example")


def test_origin_is_same_origin_or_listed() -> None:
    hosts = policy(allowed_origins=["https://app.example"])
    assert hosts.origin_allowed(None, "127.0.0.1:8000")  # not a browser
    assert hosts.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert hosts.origin_allowed("https://app.example/", "127.0.0.1:8000")
    for bad in ("http://evil.example", "null", "http://127.0.0.1:9999", "file://", "garbage"):
        assert not hosts.origin_allowed(bad, "127.0.0.1:8000"), bad


def test_csp_per_kind_of_response() -> None:
    assert "script-src 'self';" in csp_for("/", "127.0.0.1:8000")
    assert "ws://127.0.0.1:8000" in csp_for("/static/app.js", "127.0.0.1:8000")
    assert csp_for("/v1/streams", "h").startswith("default-src 'none'")
    assert "'unsafe-inline'" in csp_for("/docs", "h").split("script-src")[1].split(";")[1]


def test_auth_throttle_counts_failures_in_a_window() -> None:
    throttle = AuthThrottle(limit=3, window_s=0.3)
    for _ in range(3):
        throttle.check("1.2.3.4")
        throttle.failed("1.2.3.4")
    with pytest.raises(ApiError) as refused:
        throttle.check("1.2.3.4")
    assert refused.value.code == "auth_throttled" and refused.value.headers["Retry-After"] == "1"
    throttle.check("5.6.7.8")  # per address
    time.sleep(0.35)
    throttle.check("1.2.3.4")  # the window passed


def test_nesting_depth_is_checked_without_recursion() -> None:
    deep: object = []
    for _ in range(100_000):
        deep = [deep]
    assert too_deep(deep, 32)
    assert not too_deep({"a": [{"b": [1, 2]}]}, 4) and too_deep({"a": [{"b": [[1]]}]}, 4)


def test_errors_never_echo_unbounded_input() -> None:
    assert len(clip("A" * 4_000_000)) < 100
    errors = [{"loc": ("body", "K" * 10_000), "msg": "Extra inputs are not permitted"}] * 50
    text = field_errors(errors)
    assert len(text) < 2000 and "and 42 more" in text


def test_upload_and_question_quotas_per_key_inside_the_global_limits() -> None:
    quotas = Quotas(
        ServerSettings(max_uploads=3, max_uploads_per_key=2, max_questions=3,
                       max_questions_per_key=2)
    )  # fmt: skip
    a1, _ = quotas.start_upload("a", None), quotas.start_upload("a", None)
    with pytest.raises(ApiError) as full:
        quotas.start_upload("a", None)
    assert full.value.code == "quota_exceeded" and "Retry-After" in full.value.headers
    b1 = quotas.start_upload("b", None)  # another key is not held up
    with pytest.raises(ApiError) as server_full:
        quotas.start_upload("c", None)
    assert server_full.value.code == "too_many_uploads"
    a1.job = type("Job", (), {"state": "done"})()  # a finished job frees its slot
    quotas.start_upload("c", None)
    quotas.release(b1)
    assert quotas.uploads_in_progress("b") == 0
    releases = [quotas.start_question("a"), quotas.start_question("a")]
    with pytest.raises(ApiError):
        quotas.start_question("a")
    release_b = quotas.start_question("b")
    releases[0]()
    releases[0]()  # idempotent
    quotas.start_question("a")
    release_b()


def test_upload_bytes_quota_on_the_declared_length() -> None:
    quotas = Quotas(ServerSettings(max_upload_queue_bytes_per_key=1000, max_upload_bytes=800))
    first = quotas.start_upload("a", 600)
    quotas.grew(first, 600)
    with pytest.raises(ApiError) as refused:
        quotas.start_upload("a", 600)
    assert refused.value.code == "quota_exceeded"
    assert quotas.start_upload("a", None).room == 400


def test_outbox_is_bounded_and_reports_overflow_once() -> None:
    overflows = []

    async def scenario() -> list[object]:
        box = Outbox(max_messages=4, max_bytes=1000, on_overflow=lambda: overflows.append(1))
        box.put_nowait({"type": "status", "n": 1})
        box.put_nowait(None)  # ignored
        first = await box.get()
        for n in range(10):
            box.put_nowait({"type": "error", "n": n})
        box.put_nowait(Close(1000))  # after overflow nothing more is queued
        return [first, box.backlog, box.overflowed]

    first, backlog, overflowed = asyncio.run(scenario())
    assert first == '{"type": "status", "n": 1}'
    assert backlog == (0, 0) and overflowed and overflows == [1]
