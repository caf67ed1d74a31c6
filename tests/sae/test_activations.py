"""The activation stream: batches of the site's real rows, mixed across forwards, deterministic in its seed; and an
SAE trains through `probe.Trainer` on it for every model kind (decoder, ViT, CNN, linear attention's fast weights)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from probe import TrainConfig, Trainer
from probe.sae import ActivationStream, SAEConfig, Site, SparseAutoencoder, evaluate
from tests.apps.conftest import one_thread
from tests.sae import helpers


def test_batches_are_mixed_rows_of_the_site():
    model, data = helpers.decoder(), helpers.tokens(32, 6)
    site = Site(model, "blocks.0.hook_resid_post")
    every = site.rows(site.read(data[torch.arange(32)]))  # [32 * 6, 16]
    stream = ActivationStream(site, data, batch_size=20, model_batch_size=4, buffer=3, seed=1)
    batches = list(itertools.islice(iter(stream), 5))
    assert all(tuple(b["acts"].shape) == (20, 16) for b in batches)
    rows = torch.cat([b["acts"] for b in batches])
    distance = torch.cdist(rows, every, compute_mode="donot_use_mm_for_euclid_dist")
    assert distance.min(1).values.max() < 1e-4  # every streamed row is a real row of the site
    sources = distance.argmin(1)[:20] // (4 * 6)  # which forward (of 4 examples) each row of batch 0 came from
    assert len(set(sources.tolist())) > 1  # mixed across forwards
    again = list(itertools.islice(iter(ActivationStream(site, data, batch_size=20, model_batch_size=4, buffer=3,
                                                        seed=1)), 5))
    assert all(torch.equal(a["acts"], b["acts"]) for a, b in zip(batches, again))
    other = next(iter(ActivationStream(site, data, batch_size=20, model_batch_size=4, buffer=3, seed=2)))
    assert not torch.equal(other["acts"], batches[0]["acts"])


def test_bad_arguments():
    site = Site(helpers.decoder(), "blocks.0.hook_resid_post")
    with pytest.raises(ValueError, match="batch_size=0"):
        ActivationStream(site, helpers.tokens(), batch_size=0)


CASES = [("decoder", "blocks.0.hook_resid_post", None, "standard"),
         ("decoder", "blocks.0.attn.hook_z", 0, "topk"),
         ("linear", "blocks.0.attn.hook_fast_weight", None, "topk"),
         ("linear", "blocks.0.attn.hook_fast_weight", 1, "standard"),
         ("vit", "blocks.0.hook_resid_post", None, "topk"),
         ("cnn", "stages.0.hook_out", None, "standard")]


@pytest.mark.parametrize("kind, hook, head, arch", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES])
def test_sae_trains_on_every_model_kind(kind, hook, head, arch):
    if kind in ("vit", "cnn"):
        model, data = getattr(helpers, kind)(), helpers.images(32)
    else:
        model, data = helpers.decoder(attention="linear" if kind == "linear" else "softmax"), helpers.tokens(32)
    site = Site(model, hook, head)
    d_in = site.rows(site.read(data[torch.arange(1)])).shape[1]
    extra = dict(architecture="topk", k=4) if arch == "topk" else dict(l1_coefficient=1e-3)
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=2 * d_in, hook=hook, head=head, **extra))
    before = [p.detach().clone() for p in model.parameters()]
    with one_thread():
        trainer = Trainer(sae, ActivationStream(site, data, batch_size=64, model_batch_size=8),
                          config=TrainConfig(steps=30, lr=3e-3, log_every=10, progress=False, device="cpu"))
        trainer.fit()
        m = evaluate(sae, site, data, n_batches=2, batch_size=8)
    losses = trainer.losses()
    assert losses[-1] < losses[0]  # the SAE learns
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the model is only read
    assert all(math.isfinite(m[k]) for k in ("l0", "explained_variance", "dead_fraction", "ce_loss_sae"))
    if arch == "topk":
        assert m["l0"] <= 4


def test_ordered_batches_cover_the_data_in_order():
    from probe.sae.activations import ordered_batches

    data = helpers.tokens(10, 3)
    sizes = [len(b["tokens"]) for b in ordered_batches(data, 4)]
    assert sizes == [4, 4, 2]
    assert torch.equal(torch.cat([b["tokens"] for b in ordered_batches(data, 4)]), data.tensors["tokens"])
    assert [len(b["tokens"]) for b in ordered_batches(data, 4, n_batches=2)] == [4, 4]
    with pytest.raises(TypeError, match="map-style"):
        list(ordered_batches(iter([]), 4))
