"""One real-browser run: `streamlit run apps/Home.py` headless on a free port over the test fixtures, driven by
Playwright through Debian's chromium. It visits every page and every explorer view (by deep link: the URL's query
parameters must open the same view), hovers the attention component, follows the Overview's and a report's links,
and fails on any exception box and on any image that did not load (naturalWidth 0). Screenshots go to
$PROBE_SCREENSHOTS (default: the test's tmp_path)."""

from __future__ import annotations

import os
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
BROKEN_IMAGES = "Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0).map(i => i.src)"

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium "
                                "(apt-get install -y chromium)")

TAB_TEXT = {"Predictions": "Direct logit attribution", "Logit lens": "logit lens", "Patching": "attribution patching",
            "Ablation": "next-token loss at every position", "Circuits": "OV top-1 diagonal accuracy",
            "Attention": "hover a query token"}


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
    port, log = free_port(), tmp_path / "streamlit.log"
    env = {**os.environ, "PROBE_CHECKPOINTS": str(roots["checkpoints"]), "PROBE_RUNS": str(roots["runs"]),
           "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
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


def settle(page) -> None:
    """Wait until the script has run and plotly drew (a rerun can start right after the first idle state)."""
    page.wait_for_selector(IDLE, timeout=90_000)
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=90_000)


def shows(page, text: str, timeout: float = 60.0) -> bool:
    """Whether the page shows `text` within `timeout` seconds (a bound widget can start one more rerun)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in page.inner_text("body"):
            return True
        page.wait_for_timeout(250)
    return False


def check(page, name: str, shots: Path) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0, \
        f"{name}: exception box: {page.locator('[data-testid=stException]').first.inner_text()[:500]}"
    errors = page.locator('[data-testid="stAlertContentError"]')  # st.error boxes and component errors
    assert errors.count() == 0, f"{name}: error box: {errors.first.inner_text()[:500]}"
    assert page.evaluate(BROKEN_IMAGES) == [], f"{name}: images that did not load"


def test_browser_every_page_and_view(server, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("PROBE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 2000})
            context.set_default_timeout(120_000)  # a shared, loaded machine: patience, not flakiness

            def open_tab(path: str):
                """A shared link opens in a new tab (a reload of the same tab may keep its session)."""
                page = context.new_page()
                page.goto(f"{server}/{path}", timeout=90_000)
                settle(page)
                return page

            def tabs(page, name: str, labels: list[str]) -> None:
                for label in labels:  # each explorer view once, by clicking its tab
                    page.get_by_role("tab", name=label, exact=True).click()
                    settle(page)
                    assert shows(page, TAB_TEXT[label]), f"{name} {label}: not shown"
                    check(page, f"{name}_{label.lower().replace(' ', '_')}", shots)

            # the first request to a fresh server is a deep link: it must still run through Home.py's navigation
            page = open_tab("runs_browser?run=demo")
            nav = page.inner_text('[data-testid="stSidebarNav"]')
            assert "Compare runs" in nav and "Training trajectories" in nav, nav
            assert shows(page, "The end.")
            check(page, "runs_browser", shots)
            link = page.get_by_role("link", name="the alpha report")  # a report's link opens the other run
            assert link.get_attribute("href").endswith("runs_browser?run=alpha")
            with context.expect_page() as opened:
                link.click()
            new = opened.value
            settle(new)
            assert shows(new, "Alpha report")
            check(new, "report_link", shots)
            new.close()

            # every other page, through the sidebar (the same session)
            for label, text in (("Compare runs", "eval_loss"), ("Scan & Snap replay", "Train a small run"),
                                ("Training trajectories", "Curves"), ("Overview", "Checkpoints")):
                page.locator('[data-testid="stSidebarNav"]').get_by_text(label, exact=True).click()
                settle(page)
                assert shows(page, text), f"{label}: {text!r} not shown"
                check(page, label.lower().replace(" ", "_").replace("&", "and"), shots)

            # the Overview's rows open their checkpoint
            with context.expect_page() as opened:
                page.get_by_role("link", name="dec_tok", exact=True).click()
            page = opened.value
            settle(page)
            assert "checkpoint=dec_tok" in page.url
            assert shows(page, "encoded with the checkpoint's tokenizer")  # dec_tok, not dec
            check(page, "explorer_attention", shots)
            # hover: moving over a query token colours the keys by that query's attention
            page.wait_for_selector(".probe-attn .q", timeout=60_000)
            queries = page.locator(".probe-attn .q")
            n = queries.count()
            assert n > 4
            queries.nth(2).hover()
            weights = page.locator(".probe-attn .k[data-head='0']").evaluate_all(
                "els => els.map(e => parseFloat(e.dataset.weight))")
            assert len(weights) == n and abs(sum(weights) - 1.0) < 1e-2  # query 2's attention row
            assert all(w == 0 for w in weights[3:])  # causal: nothing after the query
            assert "active" in queries.nth(2).get_attribute("class")
            check(page, "hover", shots)
            # choosing a layer puts it in the URL; the URL reopens the same view
            page.locator('[data-testid="stSelectbox"]').nth(1).click()
            page.get_by_role("option", name="1", exact=True).click()
            settle(page)
            assert "layer=1" in page.url
            other = open_tab(page.url.removeprefix(server + "/"))
            assert shows(other, "blocks.1.attn.hook_pattern")
            other.close()
            page.goto(f"{server}/model_explorer?checkpoint=dec_tok&ablate_heads=L1H0&ablate_heads=L0H1")
            settle(page)
            tabs(page, "explorer", ["Predictions", "Logit lens", "Patching", "Ablation", "Circuits"])
            page.close()

            # deep links open the same view: the checkpoint, the tab and the widgets of the URL
            page = open_tab("model_explorer?checkpoint=encdec_tok&view=Circuits&circuit_stack=decoder+cross-attention"
                            "&layer=1&head=1")
            assert shows(page, "OV top-1 diagonal accuracy, cross.L1H1")
            assert shows(page, "encoder_decoder, 2 layers x 2 heads, d_model 16, vocabulary 13, n_ctx 9")
            assert page.locator('[role="tab"][aria-selected="true"]').inner_text().strip() == "Circuits"
            check(page, "explorer_encdec_circuits", shots)
            tabs(page, "explorer_encdec", ["Attention", "Patching"])
            page.close()

            page = open_tab("model_explorer?checkpoint=vit&image=5")
            assert shows(page, "hover a patch")
            check(page, "explorer_vit", shots)
            tabs(page, "explorer_vit", ["Logit lens", "Patching"])
            for checkpoint, text in (("cnn", "hook_stem"), ("linear", "linear attention (elu_plus_one, sum rule)")):
                page.locator('[data-testid="stSelectbox"]').first.click()
                page.get_by_role("option", name=checkpoint, exact=True).click()
                settle(page)
                assert shows(page, text), f"{checkpoint}: {text!r} not shown"
                check(page, f"explorer_{checkpoint}", shots)
            page.close()

            # the replay page: two recordings side by side at one step, every view moved by the slider
            page = open_tab("training_trajectories?trajectory=runs/rec_a/trajectory&compare=runs/rec_b/trajectory"
                            "&step=6&measure=spectrum")
            assert shows(page, "runs/rec_b/trajectory at step 4")
            for text in ("Attention patterns on the probe batch", "Head scores", "spectrum over training"):
                assert shows(page, text), text
            check(page, "replay_side_by_side", shots)
            page.close()

            page = open_tab("runs_browser?run=alpha&tab=Files&file=metrics.json")
            assert shows(page, "accuracy")
            check(page, "runs_file", shots)
        finally:
            browser.close()
