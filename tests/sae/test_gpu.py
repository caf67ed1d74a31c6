"""SAEs on CUDA (skipped without a GPU): trained by the Trainer under bf16 autocast on activations streamed from a
model on the GPU, and measured there; an exact reconstruction still recovers all of the loss on the GPU."""

import math

import pytest

from probe import TrainConfig, Trainer
from probe.sae import ActivationStream, SAEConfig, Site, SparseAutoencoder, evaluate, top_activations
from tests.sae import helpers

pytestmark = pytest.mark.gpu


def test_sae_trains_and_measures_on_gpu():
    model, data = helpers.decoder(attention="linear").cuda(), helpers.tokens(64, 12)
    site = Site(model, "blocks.0.attn.hook_fast_weight")
    d_in = site.rows(site.read({"tokens": data.tensors["tokens"][:1].cuda()})).shape[1]
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=256, architecture="topk", k=8, hook=site.hook))
    trainer = Trainer(sae, ActivationStream(site, data, batch_size=128, model_batch_size=16),
                      config=TrainConfig(steps=50, lr=3e-3, progress=False, device="cuda", amp=True))
    trainer.fit()
    assert sae.W_dec.device.type == "cuda" and trainer.losses()[-1] < trainer.losses()[0]
    m = evaluate(sae, site, data)
    assert m["l0"] <= 8 and all(math.isfinite(m[k]) for k in ("explained_variance", "ce_loss_sae"))
    assert len(top_activations(sae, site, data, k=3)) > 0


def test_exact_reconstruction_recovers_everything_on_gpu():
    model, data = helpers.decoder().cuda(), helpers.tokens(16)
    site = Site(model, "blocks.0.hook_resid_post")
    m = evaluate(helpers.identity_sae(16).cuda(), site, data)
    assert m["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-3)
