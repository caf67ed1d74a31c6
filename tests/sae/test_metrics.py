"""SAELens' measures on hand-built cases: a perfect reconstruction recovers all of the loss and explains all of the
variance on every model kind (the splice goes through each kind of hook, fast weights included); reconstructing
zeros recovers nothing against zero ablation; the mean row recovers nothing against mean ablation and explains no
variance; latents that cannot fire are counted dead."""

from __future__ import annotations

import math

import pytest
import torch

from probe.sae import Site, evaluate, explained_variance, l0, loss_recovered
from tests.sae import helpers


def test_pure_measures_by_hand():
    assert l0(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.5]])) == pytest.approx(1.5)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # mean 0: total sum of squares 2
    assert explained_variance(x, 0.5 * x) == pytest.approx(0.75)  # residual 0.25 + 0.25
    assert explained_variance(x, torch.zeros_like(x)) == pytest.approx(0.0)
    assert loss_recovered(clean=2.0, spliced=2.5, ablated=3.0) == pytest.approx(0.5)
    assert loss_recovered(clean=2.0, spliced=2.0, ablated=3.0) == 1.0
    assert math.isnan(loss_recovered(clean=2.0, spliced=2.5, ablated=2.0))


CASES = [  # (model, hook, head, data)
    ("decoder", "blocks.0.hook_resid_post", None),
    ("decoder", "blocks.0.attn.hook_z", 1),
    ("linear", "blocks.0.attn.hook_fast_weight", None),
    ("vit", "blocks.0.hook_resid_post", None),
    ("cnn", "stages.0.hook_out", None),
]


def make(kind: str):
    if kind in ("vit", "cnn"):
        return getattr(helpers, kind)(), helpers.images(16)
    return (helpers.decoder(attention="linear") if kind == "linear" else helpers.decoder()), helpers.tokens(16)


@pytest.mark.parametrize("kind, hook, head", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_perfect_reconstruction_recovers_everything(kind, hook, head):
    model, data = make(kind)
    site = Site(model, hook, head)
    d_in = site.rows(site.read(data[torch.arange(2)])).shape[1]
    m = evaluate(helpers.identity_sae(d_in), site, data, n_batches=2, batch_size=8)
    assert m["ce_loss_ablated"] != m["ce_loss_clean"]
    assert m["ce_loss_sae"] == pytest.approx(m["ce_loss_clean"], abs=1e-6)
    assert m["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-3)
    assert m["explained_variance"] == pytest.approx(1.0, abs=1e-6)
    assert m["mse"] == pytest.approx(0.0, abs=1e-8)
    n_rows = 16 * site.positions(site.read(data[torch.arange(1)]))
    assert m["n_rows"] == n_rows


def test_zero_and_mean_reconstructions_recover_nothing_of_their_ablation():
    model, data = helpers.decoder(), helpers.tokens(16)
    site = Site(model, "blocks.0.hook_resid_post")
    zero = helpers.identity_sae(16)
    with torch.no_grad():
        zero.W_dec.zero_()
    m = evaluate(zero, site, data, n_batches=2, batch_size=8, ablation="zero")
    assert m["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-5)
    assert m["explained_variance"] < 0  # zeros are worse than the mean row
    rows = torch.cat([site.rows(site.read(data[torch.arange(i, i + 8)])) for i in (0, 8)])
    with torch.no_grad():
        zero.b_dec.copy_(rows.mean(0))  # W_dec = 0: the reconstruction is the mean row
    m = evaluate(zero, site, data, n_batches=2, batch_size=8, ablation="mean")
    assert m["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-5)
    assert m["explained_variance"] == pytest.approx(0.0, abs=1e-5)
    assert m["ce_loss_ablated"] != m["ce_loss_clean"]  # (an untrained model: the sign is arbitrary)


def test_dead_latents_over_the_window_and_l0():
    model, data = helpers.decoder(), helpers.tokens(16)
    site = Site(model, "blocks.0.hook_resid_post")
    sae = helpers.identity_sae(16)
    with torch.no_grad():
        sae.b_enc[:5] = -1e6  # these five can never fire
    m = evaluate(sae, site, data, n_batches=2, batch_size=8)
    assert m["dead_fraction"] == pytest.approx(5 / 32)
    rows = torch.cat([site.rows(site.read(data[torch.arange(i, i + 8)])) for i in (0, 8)])
    alive = torch.cat([rows[:, 5:] > 0, -rows > 0], 1)  # latents j >= 5 fire on x_j > 0, the rest on x_j < 0
    assert m["l0"] == pytest.approx(alive.sum(1).float().mean().item())


def test_evaluate_refuses_unknown_ablation_and_restores_modes():
    model, data = helpers.decoder(), helpers.tokens(16)
    sae = helpers.identity_sae(16)
    with pytest.raises(ValueError, match="ablation='resample'"):
        evaluate(sae, Site(model, "blocks.0.hook_resid_post"), data, ablation="resample")
    model.train(), sae.train()
    evaluate(sae, Site(model, "blocks.0.hook_resid_post"), data, n_batches=1, batch_size=8)
    assert model.training and sae.training
