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

# (screenshot name, URL path and query, text the view must show)
VIEWS = [
    ("overview", "", "Checkpoints"),
    ("explorer_attention", "model_explorer?checkpoint=dec_tok", "hover a query token"),
    ("explorer_predictions", "model_explorer?checkpoint=dec_tok&view=Predictions", "Direct logit attribution"),
    ("explorer_lens", "model_explorer?checkpoint=dec_tok&view=Logit+lens", "logit lens"),
    ("explorer_patching", "model_explorer?checkpoint=dec_tok&view=Patching", "attribution patching"),
    ("explorer_ablation", "model_explorer?checkpoint=dec_tok&view=Ablation&ablate_heads=L1H0&ablate_heads=L0H1",
     "next-token loss at every position"),
    ("explorer_circuits", "model_explorer?checkpoint=encdec_tok&view=Circuits&circuit_stack=decoder+cross-attention"
                          "&layer=1&head=1", "OV top-1 diagonal accuracy, cross.L1H1"),
    ("explorer_encdec", "model_explorer?checkpoint=encdec_tok&stack=decoder+cross-attention",
     "decoder cross-attention, layer 0"),
    ("explorer_linear", "model_explorer?checkpoint=linear", "Linear attention"),
    ("explorer_vit", "model_explorer?checkpoint=vit&image=5", "hover a patch"),
    ("explorer_vit_lens", "model_explorer?checkpoint=vit&view=Logit+lens", "patch-wise logit lens"),
    ("explorer_cnn", "model_explorer?checkpoint=cnn", "hook_stem"),
    ("runs_browser", "runs_browser?run=demo", "The end."),
    ("runs_file", "runs_browser?run=alpha&tab=Files&file=metrics.json", "accuracy"),
    ("compare_runs", "compare_runs?runs=train_run&runs=train_other&smoothing=0.3", "eval_loss"),
    ("scan_snap", "scan_snap_replay?iteration=3", "Scan & Snap replay"),
    ("trajectories", "training_trajectories", "Training trajectories"),
]


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


def check(page, name: str, shots: Path) -> None:
    page.screenshot(path=str(shots / f"{name}.png"))
    assert page.locator('[data-testid="stException"]').count() == 0, \
        f"{name}: exception box: {page.locator('[data-testid=stException]').first.inner_text()[:500]}"
    assert page.evaluate(BROKEN_IMAGES) == [], f"{name}: images that did not load"


def test_browser_every_page_and_view(server, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("PROBE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 2000})
            page = context.new_page()
            # first request to a fresh server: a deep link must still run through Home.py's st.navigation
            page.goto(f"{server}/runs_browser?run=demo", timeout=90_000)
            settle(page)
            nav = page.inner_text('[data-testid="stSidebarNav"]')
            assert "Compare runs" in nav and "Training trajectories" in nav, nav
            for name, path, text in VIEWS:
                page.goto(f"{server}/{path}", timeout=90_000)
                settle(page)
                if "plotly" in path or "model_explorer" in path or "compare" in path:
                    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
                assert text in page.inner_text("body"), f"{name}: {text!r} not shown"
                check(page, name, shots)

            # the deep link opened the same view: the checkpoint, tab and widgets of the URL
            page.goto(f"{server}/model_explorer?checkpoint=encdec_tok&view=Circuits&layer=1", timeout=90_000)
            settle(page)
            assert "encoder_decoder, 2 layers x 2 heads, d_model 16, vocabulary 13, n_ctx 9" in page.inner_text("body")
            assert page.locator('[role="tab"][aria-selected="true"]').inner_text().strip() == "Circuits"
            assert "cross.L1H0" in page.inner_text("body") or "dec.L1H0" in page.inner_text("body")

            # hover: moving over a query token colours the keys by that query's attention
            page.goto(f"{server}/model_explorer?checkpoint=dec_tok", timeout=90_000)
            settle(page)
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
            shared = page.url
            other = context.new_page()
            other.goto(shared, timeout=90_000)
            settle(other)
            assert "blocks.1.attn.hook_pattern" in other.inner_text("body")
            other.close()

            # the Overview's rows open their checkpoint (a new tab) ...
            page.goto(server, timeout=90_000)
            settle(page)
            with context.expect_page() as opened:
                page.get_by_role("link", name="dec_tok", exact=True).click()
            new = opened.value
            settle(new)
            assert "Model explorer" in new.inner_text("body") and "checkpoint=dec_tok" in new.url
            assert "encoded with the checkpoint's tokenizer" in new.inner_text("body")  # dec_tok, not dec
            new.close()

            # ... and a report's link to another report opens that run
            page.goto(f"{server}/runs_browser?run=demo", timeout=90_000)
            settle(page)
            link = page.get_by_role("link", name="the alpha report")
            assert link.get_attribute("href").endswith("runs_browser?run=alpha")
            with context.expect_page() as opened:
                link.click()
            new = opened.value
            settle(new)
            assert "Alpha report" in new.inner_text("body")
            check(new, "report_link", shots)
        finally:
            browser.close()
