"""The Content-Security-Policy the server sends, in a real browser (headless Chromium): the live
page, Swagger UI at /docs and ReDoc at /redoc render from the server's own files alone — no
CDN (Chromium here has no internet, like an offline install) and no CSP violation."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _csp_violations(chrome: Any) -> list[str]:
    """CSP refusals that would break the page: an inline script or style, eval, a worker or a
    file of the server's own. (A remote URL being blocked — ReDoc's "powered by" logo from
    cdn.redoc.ly — is the policy doing its job offline, and is not counted.)"""
    found = []
    for entry in chrome.get_log("browser"):
        message = entry["message"]
        if "Content Security Policy" not in message and "Refused to" not in message:
            continue
        blocked = message.split(" - ", 1)[-1]
        if "'https://" in blocked and "127.0.0.1" not in blocked.split("violates")[0]:
            continue  # a remote resource refused, as it should be
        found.append(message)
    return found


def _wait_for(chrome: Any, script: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = chrome.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for: {script}")


def test_page_docs_and_redoc_render_under_the_csp(evs_server: str, chrome: Any) -> None:
    chrome.get(evs_server + "/docs")
    operations = _wait_for(chrome, "return document.querySelectorAll('.opblock').length")
    assert operations >= 8, operations  # every REST route, rendered by the local Swagger UI
    assert not _csp_violations(chrome)

    chrome.get(evs_server + "/redoc")
    _wait_for(chrome, "return document.querySelectorAll('[data-section-id]').length")
    assert not _csp_violations(chrome)

    chrome.get(evs_server + "/")
    _wait_for(chrome, "return document.getElementById('connect-btn') !== null")
    time.sleep(1)  # the page's script runs (stream list, readiness)
    assert not _csp_violations(chrome)
    assert chrome.execute_script("return document.styleSheets.length") >= 1
