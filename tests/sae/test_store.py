"""An SAE saved with its model and inputs loads back whole; a swapped model, a missing hook or a bare SAE
checkpoint are refused with a clear error."""

from __future__ import annotations

import pytest
import torch

from probe.checkpoint import CheckpointError
from probe.sae import SAEConfig, SparseAutoencoder, load_sae, save_sae
from tests.sae import helpers


def test_round_trip_and_refusals(tmp_path):
    model, data = helpers.decoder(), helpers.tokens(6, 5)
    model.save(tmp_path / "model")
    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=8, hook="blocks.0.attn.hook_z", head=1, architecture="topk", k=2))
    save_sae(sae, tmp_path / "sae", tmp_path / "model", data, meta={"metrics": {"l0": 2.0}})
    loaded, loaded_model, site, inputs = load_sae(tmp_path / "sae")
    assert loaded.cfg == sae.cfg and (site.hook, site.head) == ("blocks.0.attn.hook_z", 1)
    assert torch.equal(inputs.tensors["tokens"], data.tensors["tokens"])
    assert all(torch.equal(a, b) for a, b in zip(loaded_model.parameters(), model.parameters()))

    with pytest.raises(ValueError, match="cfg.hook is None"):
        save_sae(SparseAutoencoder(SAEConfig(d_in=8, d_sae=8)), tmp_path / "x", tmp_path / "model", data)
    sae.eval()
    bare = tmp_path / "bare"
    from probe.checkpoint import save

    save(sae, bare)
    with pytest.raises(CheckpointError, match="without its source model"):
        load_sae(bare)
    helpers.decoder(seed=3).save(tmp_path / "model")
    with pytest.raises(CheckpointError, match="is not the one"):
        load_sae(tmp_path / "sae")
