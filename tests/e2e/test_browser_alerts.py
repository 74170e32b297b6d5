"""The page's alerts module in headless Chromium against a real `evs serve --config tiny`: add a
watch in the watch editor, stream the fake webcam, and see the alert arrive in the alerts pane
(server-sent events read with fetch), with no JavaScript error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STATIC = Path(__file__).resolve().parents[2] / "src/eventvstream/api/static"


def wait(driver: Any, what: str, cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            logs = driver.get_log("browser")[-10:]
            pytest.fail(f"timed out waiting for {what}; console: {logs}")
        time.sleep(0.25)


def test_watch_editor_and_alerts_pane(evs_server: str, chrome: Any) -> None:
    from selenium.webdriver.common.by import By

    def find_all(css: str) -> list:
        return chrome.find_elements(By.CSS_SELECTOR, css)

    chrome.get(f"{evs_server}/")
    wait(chrome, "the alerts panel", lambda: bool(find_all("#alerts-panel #watch-form")), 10)
    wait(chrome, "the alerts stream", lambda: "live" in find_all("#alert-conn")[0].text, 10)
    chrome.find_element(By.ID, "watch-text").send_keys("any event longer than 1 second")
    chrome.find_element(By.ID, "watch-add").click()
    wait(chrome, "the watch in the list", lambda: len(find_all("#watch-list li.watch")) == 1, 10)
    assert "duration" in find_all("#watch-list li.watch")[0].text
    chrome.find_element(By.ID, "src-camera").click()
    chrome.find_element(By.ID, "connect-btn").click()
    wait(chrome, "an alert card", lambda: bool(find_all("#alert-list .alert-card")), 90)
    card = find_all("#alert-list .alert-card")[0]
    assert "any event longer than 1 second" in card.text and "webcam" in card.text
    assert card.get_attribute("data-alert-id")
    errors = [e for e in chrome.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, f"JavaScript console errors: {errors}"


def test_alerts_module_is_imported_by_the_page() -> None:
    """test_browser.py checks every module (sinks, imports, size); this one only that the page
    loads the alerts module."""
    assert 'import "./js/alerts.js";' in (STATIC / "app.js").read_text(encoding="utf-8")
    assert (STATIC / "js" / "alerts.js").is_file()
