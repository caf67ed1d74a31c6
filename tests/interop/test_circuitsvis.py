"""circuitsvis views of probe's caches render with no network: the page carries its own JavaScript, nothing probes
google.com, and a real browser with every request but the page's own refused draws every head's pattern."""

import urllib.request
from pathlib import Path

import pytest
import torch

import probe
from probe.interop.circuitsvis import OfflineHTML, attention, offline

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
PROMPT = [0, 5, 9, 3, 7, 5, 9, 3, 7]


@pytest.fixture(scope="module")
def pattern():
    model = probe.load(ROOT / "checkpoints" / "induction_2l")
    _, cache = model.run_with_cache(torch.tensor([PROMPT]))
    return cache["pattern", 1][0]


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def test_attention_view_is_self_contained(pattern, no_network):
    view = attention(pattern, [f"t{t}" for t in PROMPT], layer=1)
    for html in (str(view), view._repr_html_(), view.__html__()):
        assert "unpkg.com" not in html and "CircuitsVis.render" in html
        assert "L1H3" in html
    assert no_network == []


def test_offline_refuses_what_is_not_a_view_and_cdn_html():
    with pytest.raises(TypeError, match="RenderedHTML"):
        offline("<div></div>")
    with pytest.raises(ValueError, match="unpkg"):
        OfflineHTML('<script type="module">import {render} from "https://unpkg.com/circuitsvis@1/dist/cdn/esm.js"')


def test_attention_refuses_cross_attention_and_wrong_labels(pattern):
    with pytest.raises(ValueError, match="as many queries as keys"):
        attention(pattern[:, :3], [str(t) for t in PROMPT])
    with pytest.raises(ValueError, match="one label per position"):
        attention(pattern, ["a", "b"])


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_saved_page_draws_every_head_in_a_browser_without_network(pattern, tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = attention(pattern, [f"t{t}" for t in PROMPT], layer=1).save(tmp_path / "heads.html")
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()

            def route(r):
                requests.append(r.request.url)
                r.continue_() if r.request.url.startswith("file://") else r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.wait_for_selector("canvas", timeout=20_000)
            text = page.inner_text("body")
            canvases = page.evaluate("document.querySelectorAll('canvas').length")
        finally:
            browser.close()
    assert errors == []
    assert requests == [page_path.as_uri()]
    assert all(f"L1H{h}" in text for h in range(pattern.shape[0]))
    assert canvases >= pattern.shape[0]
