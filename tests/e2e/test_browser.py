"""The web page at `/` against a real `evs serve --config tiny`, in headless Chromium.

The fake webcam plays a clip with hard cuts; the page captures it, streams JPEG frames over the
WebSocket, and must show event cards with captions, answer a question with citation chips that
jump to their cards, keep up with live (lag < 1 s), and log no JavaScript error on the way.
A screenshot is left in test-artifacts/browser.png.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

EVENTS_TIMEOUT_S = 60.0
ANSWER_TIMEOUT_S = 60.0


class Page:
    """Thin helpers over the Selenium driver, collecting the browser console as it goes."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By

        self.d = driver
        self.By = By
        self.console: list[dict[str, Any]] = []
        self.lags: list[float] = []

    def find(self, css: str):
        return self.d.find_element(self.By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        return self.d.find_elements(self.By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def drain_console(self) -> None:
        self.console.extend(self.d.get_log("browser"))

    def sample(self) -> None:
        """Record the lag shown in the status bar (the page keeps the number in data-lag)."""
        lag = self.find("#st-lag").get_attribute("data-lag")
        if lag:
            self.lags.append(float(lag))

    def wait_for(self, what: str, cond: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sample()
            if cond():
                return
            if time.monotonic() > deadline:
                self.screenshot("browser-timeout.png")
                self.drain_console()
                pytest.fail(
                    f"timed out after {timeout:.0f} s waiting for {what}; status bar: "
                    f"{self.text('#status-bar')!r}; message: {self.text('#conn-msg')!r}; "
                    f"toasts: {self.text('#toasts')!r}; console: {self.console[-10:]}"
                )
            time.sleep(0.25)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.d.save_screenshot(str(path))
        return path


def test_live_page_end_to_end(evs_server: str, chrome: Any) -> None:
    # Module scripts run only when served with a JavaScript MIME type: check every one.
    scripts = [f"/static/{p.relative_to(STATIC).as_posix()}" for p in sorted(STATIC.rglob("*.js"))]
    for path, kind in (("/", "text/html"), *((s, "javascript") for s in scripts)):
        try:
            with urllib.request.urlopen(f"{evs_server}{path}", timeout=5) as resp:
                ctype = resp.headers.get("content-type", "")
        except urllib.error.HTTPError as err:
            pytest.fail(f"GET {path} -> HTTP {err.code}: the server must serve api/static/ there")
        assert kind in ctype, f"GET {path}: content-type {ctype!r}"
    page = Page(chrome)
    chrome.get(f"{evs_server}/")
    assert "Event-VStream" in chrome.title

    # Camera source (the fake webcam), default stream id / fps, then connect.
    page.find("#src-camera").click()
    assert page.find("#stream-id").get_attribute("value") == "webcam"
    page.find("#connect-btn").click()
    page.wait_for(
        "the session to go live",
        lambda: page.find("#st-conn").get_attribute("data-state") == "live",
        30,
    )

    # At least two event cards, and at least one caption finished.
    page.wait_for(
        ">= 2 event cards and >= 1 finished caption",
        lambda: (
            len(page.find_all("#cards .card")) >= 2
            and len(page.find_all("#cards .card .caption.done")) >= 1
        ),
        EVENTS_TIMEOUT_S,
    )
    assert int(page.text("#st-sent")) > 0
    card = page.find("#cards .card")
    assert page.find_all("#cards .card .thumb:not([hidden])"), "no thumbnail on any card"
    # a live camera's card states the clock ("10:31:05 – 10:31:09 UTC"), as its answers do
    shown = card.find_element(page.By.CSS_SELECTOR, ".ev-span").text
    assert re.fullmatch(r"\d\d:\d\d:\d\d – \d\d:\d\d:\d\d \S.*", shown), shown

    # Ask a question; the answer streams in and ends with citation chips.
    page.find("#question").send_keys("what is happening now?")
    page.find("#ask-btn").click()
    page.wait_for(
        "an answer with >= 1 citation chip",
        lambda: len(page.find_all("#citations .chip")) >= 1,
        ANSWER_TIMEOUT_S,
    )
    assert page.text("#answer-text").strip(), "the answer text is empty"

    # Clicking a chip highlights its card (the first chip whose event is on the timeline).
    on_timeline = {c.get_attribute("data-event-id") for c in page.find_all("#cards .card")}
    chips = page.find_all("#citations .chip")
    target = next((c for c in chips if c.get_attribute("data-event-id") in on_timeline), None)
    assert target is not None, (
        f"no cited event is on the timeline: chips {[c.text for c in chips]}, "
        f"cards {sorted(on_timeline)}"
    )
    event_id = target.get_attribute("data-event-id")
    assert target.text.startswith(f"[#{event_id}] ")
    target.click()
    page.wait_for(
        f"card #{event_id} to be highlighted",
        lambda: "highlight" in (page.find(f"#event-{event_id}").get_attribute("class") or ""),
        5,
    )
    assert len(page.find_all("#cards .card.highlight")) == 1

    # The server kept up with live: nine readings in ten under 1 s (the first seconds include
    # model warm-up on the first batch, so not every reading).
    page.wait_for("a lag reading", lambda: bool(page.lags), 10)
    lags = sorted(page.lags)
    assert lags[int(0.9 * (len(lags) - 1))] < 1.0, f"lag readings: {page.lags[-40:]}"

    shot = page.screenshot("browser.png")
    print(
        f"\nscreenshot: {shot}\nstatus: {page.text('#status-bar')!r}\n"
        f"cards: {len(page.find_all('#cards .card'))}, lag min/max: "
        f"{min(page.lags):.2f}/{max(page.lags):.2f} s\nanswer: {page.text('#answer-text')!r}"
    )

    # No JavaScript errors in the console at any point.
    page.drain_console()
    errors = [e for e in page.console if e.get("level") == "SEVERE"]
    assert not errors, f"JavaScript console errors: {errors}"


STATIC = Path(__file__).resolve().parents[2] / "src/eventvstream/api/static"


def test_static_page_is_self_contained() -> None:
    """No browser needed: the page loads nothing from outside the server, and server text is
    never parsed as HTML."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    scripts = {p.relative_to(STATIC).as_posix(): p.read_text("utf-8") for p in STATIC.rglob("*.js")}
    assert '<script type="module" src="static/app.js">' in html
    assert 'href="static/style.css"' in html
    assert len(scripts) > 1 and "app.js" in scripts
    for name, text in (("index.html", html), ("style.css", css), *scripts.items()):
        assert "http://" not in text and "https://" not in text, f"{name} names an external URL"
        assert "@import" not in text, name
    for name, js in scripts.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in js, f"{name} uses {sink}"
        # Every import is a relative module of this page (no bare names: there is no bundler).
        for spec in re.findall(r'^import (?:.* from )?"([^"]+)";$', js, flags=re.M):
            assert spec.startswith("./") and (STATIC / name).parent.joinpath(spec).is_file(), (
                f"{name} imports {spec}"
            )
        assert len(js.splitlines()) < 400, f"{name} has grown past 400 lines: split it"
