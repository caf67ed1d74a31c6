"""One real-browser visit of the Claims page (streamlit headless + Playwright through Debian's chromium, as
tests/apps/test_browser.py): the verdict table and a claim's figure render; no exception box, no broken image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.apps.claims_fixture import build
from tests.apps.conftest import one_thread
from tests.apps.test_browser import ARGS, CHROMIUM, IDLE, server  # noqa: F401 (server: the same streamlit fixture)

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium "
                                "(apt-get install -y chromium)")


@pytest.fixture
def roots(tmp_path):
    """The folders `server` serves (this module's own, overriding the shared app roots): runs/claims built by the
    claims fixture, no checkpoints."""
    (tmp_path / "checkpoints").mkdir()
    with one_thread():
        build(tmp_path / "runs")
    return {"checkpoints": tmp_path / "checkpoints", "runs": tmp_path / "runs"}


def test_browser_claims_page_renders_table_figure_and_report(server, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("PROBE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.goto(f"{server}/claims", timeout=60_000)  # a deep link on a fresh server
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=60_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            page.wait_for_selector('[data-testid="stImage"] img', timeout=60_000)
            page.get_by_text("Report of claims.", exact=False).first.click()  # open the report expander
            page.wait_for_selector("text=Setup", timeout=30_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            page.screenshot(path=str(shots / "claims.png"), full_page=True)
            body = page.inner_text("body")
            assert "Claims" in body and "supported" in body and "inconclusive" in body
            assert page.locator('[data-testid="stException"]').count() == 0, body
            assert "Traceback" not in body
            images = page.locator("img")
            widths = [images.nth(i).evaluate("img => img.complete ? img.naturalWidth : -1")
                      for i in range(images.count())]
            assert widths and all(w > 0 for w in widths), widths  # every image loaded (none broken)
        finally:
            browser.close()
