"""The Content-Security-Policy the server sends, in a real browser (headless Chromium): the live
page, Swagger UI at /docs and ReDoc at /redoc render from the server's own files alone — no
CDN (Chromium here has no internet, like an offline install) and no CSP violation."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _csp_violations(chrome: Any) -> list[str]:
    return [
        entry["message"]
        for entry in chrome.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


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
