"""AppTest of the SAE page on SAEs trained here (a decoder's residual stream, a ViT's): the measures shown are
`probe.sae.evaluate`'s, the token windows carry the latent's activation on each token (recomputed here from the
SAE), the ViT view marks the patch `top_activations` found; a model swapped under an SAE and an empty shelf are
reported, not raised."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from probe import TrainConfig, Trainer
from probe.sae import (
    ActivationStream,
    SAEConfig,
    Site,
    SparseAutoencoder,
    evaluate,
    save_sae,
    top_activations,
    vit_patch,
)
from tests.apps.conftest import HOME, one_thread
from tests.apps.test_pages import array
from tests.sae import helpers


def train_sae(model, data, hook: str, arch: dict) -> SparseAutoencoder:
    site = Site(model, hook)
    d_in = site.rows(site.read(data[torch.arange(1)])).shape[1]
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=32, hook=hook, **arch))
    Trainer(sae, ActivationStream(site, data, batch_size=64, model_batch_size=8),
            config=TrainConfig(steps=20, lr=3e-3, progress=False, device="cpu")).fit()
    return sae.eval()


@pytest.fixture(scope="module")
def shelf(tmp_path_factory):
    root = tmp_path_factory.mktemp("sae_shelf")
    ckpt = root / "checkpoints"
    with one_thread():
        dec, tokens = helpers.decoder(), helpers.tokens(24, 10)
        dec.save(ckpt / "dec")
        sae = train_sae(dec, tokens, "blocks.0.hook_resid_post", dict(architecture="topk", k=4))
        save_sae(sae, ckpt / "sae_dec", ckpt / "dec", tokens)
        vit, images = helpers.vit(), helpers.images(12)
        vit.save(ckpt / "vit")
        save_sae(train_sae(vit, images, "blocks.0.hook_resid_post", dict(l1_coefficient=1e-3)), ckpt / "sae_vit",
                 ckpt / "vit", images)
        helpers.decoder().save(ckpt / "dec2")
        save_sae(sae, ckpt / "sae_swapped", ckpt / "dec2", tokens)
        helpers.decoder(seed=5).save(ckpt / "dec2")  # the model under sae_swapped changes afterwards
    return {"root": root, "ckpt": ckpt, "dec": dec, "tokens": tokens, "sae": sae, "vit": vit, "images": images}


@pytest.fixture
def app(shelf, monkeypatch):
    monkeypatch.setenv("PROBE_CHECKPOINTS", str(shelf["ckpt"]))
    monkeypatch.setenv("PROBE_RUNS", str(shelf["root"] / "runs"))

    def open_page(sae: str) -> AppTest:
        at = AppTest.from_file(HOME, default_timeout=120)
        at.query_params["sae"] = sae
        at.run()
        at.switch_page("views/sae.py").run()
        assert not at.exception, at.exception
        return at

    return open_page


def chart(at: AppTest, key: str) -> dict:
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, f"chart {key!r}: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)


def test_decoder_sae_measures_and_token_windows(shelf, app):
    at = app("sae_dec")
    assert at.selectbox(key="sae").options == ["sae_dec", "sae_swapped", "sae_vit"]
    at.selectbox(key="sae").set_value("sae_dec").run()
    sae, site, tokens = shelf["sae"], Site(shelf["dec"], "blocks.0.hook_resid_post"), shelf["tokens"]
    m = evaluate(sae, site, tokens)
    shown = {x.label: x.value for x in at.metric}
    assert shown["L0"] == f"{m['l0']:.2f}" and shown["Explained variance"] == f"{m['explained_variance']:.3f}"
    assert shown["CE loss recovered"] == f"{m['ce_loss_recovered']:.3f}"
    assert shown["Dead latents"] == f"{m['dead_fraction']:.1%}"

    latents = at.selectbox(key="latent").options
    latent = int(latents[-1].split()[0])  # the least frequent live latent
    at.selectbox(key="latent").set_value(latent).run()
    assert not at.exception, at.exception
    fig = chart(at, "token_windows")["data"][0]
    top = top_activations(sae, site, tokens, k=8, latents=[latent])
    assert len(fig["y"]) == len(top) > 0
    z = np.array([[np.nan if v is None else v for v in row] for row in fig["z"]], dtype=float)
    for i, r in enumerate(top.itertuples()):
        assert z[i, 8] == pytest.approx(r.activation, abs=1e-5)  # column 8: the top-activating token itself
        assert fig["text"][i][8] == str(int(tokens.tensors["tokens"][r.example, r.position]))
        lo = max(0, r.position - 8)
        with torch.no_grad():  # the activation on every token of the window, from the SAE directly
            acts = sae.encode(site.rows(site.read({"tokens": tokens.tensors["tokens"][r.example : r.example + 1]})))
        expected = acts[lo : r.position + 3, latent].numpy()
        got = z[i, 8 - (r.position - lo) : 8 - (r.position - lo) + len(expected)]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_vit_sae_marks_the_patch(shelf, app):
    at = app("sae_vit")
    site = Site(shelf["vit"], "blocks.0.hook_resid_post")
    latent = int(at.selectbox(key="latent").value)
    from probe.sae import load_sae

    sae = load_sae(shelf["ckpt"] / "sae_vit")[0]
    top = top_activations(sae, site, shelf["images"], k=8, latents=[latent])
    for i, r in enumerate(top.itertuples()):
        fig = chart(at, f"image_{i}")
        np.testing.assert_allclose(array(fig["data"][0]["z"]),
                                   shelf["images"].tensors["images"][r.example, 0].numpy(), atol=1e-6)
        cell = vit_patch(shelf["vit"], r.position)
        shapes = fig["layout"].get("shapes", [])
        if cell is None:
            assert not shapes and "class token" in fig["layout"]["title"]["text"]
        else:
            assert (shapes[0]["y0"] + 0.5, shapes[0]["x0"] + 0.5) == (cell[0] * 2, cell[1] * 2)


def test_swapped_model_and_empty_shelf_are_reported(shelf, app, monkeypatch, tmp_path):
    at = app("sae_swapped")
    assert "is not the one" in at.error[0].value
    monkeypatch.setenv("PROBE_CHECKPOINTS", str(tmp_path))
    at = app("sae_dec")
    assert "No SAE checkpoints" in at.info[0].value
