"""One real-browser run: `streamlit run apps/Home.py` headless on a free port, driven by Playwright through Debian's
chromium. Screenshots go to $PROBE_SCREENSHOTS (default: the test's tmp_path)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.apps.conftest import HOME

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium "
                                "(apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer /_stcore/health within {timeout} s:\n{log.read_text()[-2000:]}")


@pytest.fixture
def server(roots, tmp_path):
    ckpt, runs = tmp_path / "checkpoints", tmp_path / "runs"
    shutil.copytree(roots["checkpoints"] / "dec", ckpt / "dec")
    shutil.copytree(roots["runs"] / "alpha", runs / "alpha")
    port, log = free_port(), tmp_path / "streamlit.log"
    env = {**os.environ, "PROBE_CHECKPOINTS": str(ckpt), "PROBE_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", HOME, "--server.headless", "true", "--server.address",
           "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_browser_deep_link_home_and_model_explorer(server, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("PROBE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            # first request to a fresh server: a deep link must still run through Home.py's st.navigation
            page.goto(f"{server}/runs_browser", timeout=60_000)
            page.wait_for_selector("text=Alpha report", timeout=60_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            nav = page.inner_text('[data-testid="stSidebarNav"]')
            assert "Scan & Snap replay" in nav and "Training trajectories" in nav, nav
            assert "The claim is supported (accuracy 0.875)." in page.inner_text("body")
            page.screenshot(path=str(shots / "runs_browser.png"))

            page.goto(server, timeout=60_000)
            page.wait_for_selector("text=probe dashboards", timeout=60_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            page.screenshot(path=str(shots / "home.png"))
            body = page.inner_text("body")
            assert "Checkpoints" in body and "Runs" in body and "Model explorer" in body
            assert page.locator('[data-testid="stDataFrame"]').count() == 2  # checkpoints and runs (canvas grids)

            page.get_by_text("Model explorer", exact=True).first.click()
            page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=60_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            page.wait_for_selector(".js-plotly-plot .heatmaplayer", timeout=30_000)  # plotly drew the heat-map
            page.screenshot(path=str(shots / "model_explorer.png"))
            body = page.inner_text("body")
            assert "token ids in [0, 12)" in body  # the fixture's decoder (d_vocab 12) is loaded
            assert "Attention patterns" in body and "Predictions" in body and "Head ablation" in body
            assert "Traceback" not in body and "Error" not in body
        finally:
            browser.close()
