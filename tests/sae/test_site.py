"""Sites: every layout becomes rows (one per example and position, example by example) and back, on every model
kind; a head is selected on its own axis; patterns and impossible heads are refused."""

from __future__ import annotations

import pytest
import torch

from probe.sae import Site
from tests.sae import helpers


def check(site: Site, act: torch.Tensor, expected_rows: torch.Tensor) -> None:
    rows = site.rows(act)
    assert torch.equal(rows, expected_rows)
    assert torch.equal(site.put(act, rows), act)
    edited = site.put(act, torch.zeros_like(rows))
    assert torch.equal(site.rows(edited), torch.zeros_like(rows))


@pytest.fixture(scope="module")
def models():
    return {"decoder": helpers.decoder(), "linear": helpers.decoder(attention="linear"), "vit": helpers.vit(),
            "cnn": helpers.cnn()}


def test_residual_stream_rows_are_example_by_example(models):
    site = Site(models["decoder"], "blocks.0.hook_resid_post")
    act = site.read(helpers.tokens(3, 5)[torch.arange(3)])
    assert act.shape == (3, 5, 16) and site.positions(act) == 5
    check(site, act, torch.stack([act[r // 5, r % 5] for r in range(15)]))


def test_heads_concatenated_or_one(models):
    model = models["decoder"]
    act = Site(model, "blocks.0.attn.hook_z").read(helpers.tokens(2, 4)[torch.arange(2)])  # [b p h e]
    check(Site(model, "blocks.0.attn.hook_z"), act, act.reshape(8, 16))
    one = Site(model, "blocks.0.attn.hook_z", head=1)
    check(one, act, act[:, :, 1].reshape(8, 8))
    edited = one.put(act, torch.zeros(8, 8))
    assert torch.equal(edited[:, :, 0], act[:, :, 0]) and not edited[:, :, 1].any()


def test_fast_weight_rows(models):
    model = models["linear"]
    site = Site(model, "blocks.0.attn.hook_fast_weight")
    act = site.read(helpers.tokens(2, 4)[torch.arange(2)])  # [b h p e f]
    b, h, p, e, f = act.shape
    assert site.positions(act) == p
    expected = torch.stack([act[r // p, :, r % p].reshape(-1) for r in range(b * p)])
    check(site, act, expected)
    check(Site(model, "blocks.0.attn.hook_fast_weight", head=1), act,
          torch.stack([act[r // p, 1, r % p].reshape(-1) for r in range(b * p)]))


def test_vit_and_cnn(models):
    imgs = helpers.images(2)[torch.arange(2)]
    site = Site(models["vit"], "blocks.0.hook_resid_post")
    act = site.read(imgs)
    assert site.positions(act) == 17  # class token + 16 patches
    check(site, act, act.reshape(-1, 16))
    cnn_site = Site(models["cnn"], "stages.0.hook_out")
    act = cnn_site.read(imgs)  # [b c y x]
    b, c, y, x = act.shape
    assert cnn_site.positions(act) == y * x
    check(cnn_site, act, torch.stack([act[r // (y * x), :, (r % (y * x)) // x, r % x] for r in range(b * y * x)]))
    pooled = Site(models["cnn"], "hook_pooled")
    act = pooled.read(imgs)
    assert pooled.positions(act) == 1
    check(pooled, act, act)


def test_refusals(models):
    model = models["decoder"]
    with pytest.raises(ValueError, match="no fixed feature axis"):
        Site(model, "blocks.0.attn.hook_pattern")
    with pytest.raises(KeyError, match="hook_resid_post"):
        Site(model, "blocks.0.hook_resid_pots")
    act = torch.zeros(2, 3, 16)
    with pytest.raises(ValueError, match="has no head axis"):
        Site(model, "blocks.0.hook_resid_post", head=0).rows(act)
    with pytest.raises(ValueError, match="has 2 heads"):
        Site(model, "blocks.0.attn.hook_z", head=2).rows(torch.zeros(2, 3, 2, 8))
    with pytest.raises(TypeError, match="hook points"):
        Site(torch.nn.Linear(2, 2), "x")
