"""Top-activating examples against a brute-force search over every row, token windows and ViT patches by hand."""

from __future__ import annotations

import pytest
import torch

from probe.sae import Site, latent_summary, token_context, top_activations, vit_patch
from tests.sae import helpers


def brute_force(sae, site, data, latent: int, k: int) -> list[tuple[float, int, int]]:
    act = site.read(data[torch.arange(len(data))])
    f = sae.encode(site.rows(act))[:, latent]
    p = site.positions(act)
    order = f.argsort(descending=True)[:k]
    return [(f[r].item(), int(r) // p, int(r) % p) for r in order if f[r] > 0]


def test_top_activations_match_brute_force():
    model, data = helpers.decoder(), helpers.tokens(20, 7)
    site = Site(model, "blocks.0.hook_resid_post")
    sae = helpers.identity_sae(16)
    table = top_activations(sae, site, data, k=4, batch_size=6)  # batches of 6 do not divide 20 examples
    assert list(table.columns) == ["latent", "rank", "activation", "example", "position"]
    assert sorted(table["latent"].unique()) == list(range(32))
    for latent in (0, 5, 17, 31):
        rows = table[table["latent"] == latent].sort_values("rank")
        expected = brute_force(sae, site, data, latent, 4)
        assert rows["rank"].tolist() == list(range(len(expected)))
        assert rows[["example", "position"]].values.tolist() == [[e, p] for _, e, p in expected]
        assert rows["activation"].tolist() == pytest.approx([a for a, _, _ in expected], abs=1e-5)
        tokens = data.tensors["tokens"]
        act = site.read({"tokens": tokens[rows["example"].tolist()]})  # the rows really activate that much
        again = sae.encode(act[torch.arange(len(rows)), rows["position"].tolist()])[:, latent]
        assert again.tolist() == pytest.approx(rows["activation"].tolist(), abs=1e-5)


def test_latent_choice_silent_latents_and_summary():
    model, data = helpers.decoder(), helpers.tokens(8, 5)
    site = Site(model, "blocks.0.hook_resid_post")
    sae = helpers.identity_sae(16)
    with torch.no_grad():
        sae.b_enc[3] = -1e6
    table = top_activations(sae, site, data, k=2, latents=[3, 4])
    assert table["latent"].tolist() == [4, 4]  # latent 3 never fires: no rows
    summary = latent_summary(sae, site, data)
    rows = site.rows(site.read(data[torch.arange(8)]))
    assert summary.loc[3, "frequency"] == 0.0
    assert summary.loc[4, "frequency"] == pytest.approx((rows[:, 4] > 0).float().mean().item())
    assert summary.loc[4, "max_activation"] == pytest.approx(rows[:, 4].max().item(), abs=1e-5)
    with pytest.raises(ValueError, match="latents must be indices"):
        top_activations(sae, site, data, latents=[32])
    with pytest.raises(TypeError, match="map-style"):
        top_activations(sae, site, iter([data[torch.arange(4)]]))


def test_token_context_and_vit_patch_by_hand():
    tokens = torch.arange(10, 20)
    assert token_context(tokens, 5, before=2, after=1) == ([13, 14, 15, 16], 2)
    assert token_context(tokens, 1, before=3, after=2) == ([10, 11, 12, 13], 1)
    assert token_context(tokens, 9, before=1, after=5) == ([18, 19], 1)
    with pytest.raises(ValueError, match="outside the sequence"):
        token_context(tokens, 10)
    vit = helpers.vit()  # 8x8 images, 2x2 patches: a 4x4 grid
    assert vit_patch(vit, 0) is None
    assert vit_patch(vit, 1) == (0, 0) and vit_patch(vit, 6) == (1, 1) and vit_patch(vit, 16) == (3, 3)
    with pytest.raises(ValueError, match="outside"):
        vit_patch(vit, 17)


def test_vit_top_examples_index_images():
    model, data = helpers.vit(), helpers.images(12)
    site = Site(model, "blocks.0.hook_resid_post")
    sae = helpers.identity_sae(16)
    table = top_activations(sae, site, data, k=3, latents=[2])
    expected = brute_force(sae, site, data, 2, 3)
    assert table[["example", "position"]].values.tolist() == [[e, p] for _, e, p in expected]
    assert table["position"].max() <= 16
