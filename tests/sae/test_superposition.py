"""An SAE trained on a planted sparse signal recovers its features (the toy model of superposition, Elhage et al.
2022): 32 features, each active with probability 0.05 and of size Uniform[0, 1], along random unit directions in
16 dimensions; SAEs with 64 latents trained through `probe.Trainer`.

The bound: every true direction w_i must have a decoder row with cosine similarity > 0.9. By chance, a random unit
vector u in R^16 has P(cos(u, w) >= 0.9) = I_{1 - 0.81}(15/2, 1/2) / 2 ~ 2e-6 (the cap of a sphere), so a feature is
matched by one of 64 random rows with probability ~ 1e-4, and all 32 features by chance essentially never; the
untrained SAE (random rows) is checked to fall below the bound. 0.9 is loose for a feature that was found (the
features interfere, cos(w_i, w_j) ~ 0.25 typically, so a row mixes in a little of its neighbours) and far above
chance. The suite runs seed 0; `PROBE_SAE_SEEDS=0,1,2 pytest tests/sae/test_superposition.py` runs more (measured:
min over features 0.954 / 0.984 / 0.988 for the standard SAE, L1 0.3, and 0.989 / 0.987 / 0.991 for TopK, k=2).
"""

from __future__ import annotations

import os

import pytest
import torch
from scipy.special import betainc

from probe import TrainConfig, Trainer
from probe.data.superposition import sparse_features
from probe.sae import SAEConfig, SparseAutoencoder
from tests.apps.conftest import one_thread

BOUND = 0.9
D, N_FEATURES, D_SAE = 16, 32, 64
SEEDS = [int(s) for s in os.environ.get("PROBE_SAE_SEEDS", "0").split(",")]


def recovery(sae: SparseAutoencoder, directions: torch.Tensor) -> torch.Tensor:
    """For each true direction, the largest cosine similarity with a decoder row."""
    rows = sae.W_dec.detach() / sae.W_dec.detach().norm(dim=1, keepdim=True)
    return (directions @ rows.T).max(1).values


def test_the_bound_is_far_above_chance():
    one_row = 0.5 * betainc((D - 1) / 2, 0.5, 1 - BOUND**2)
    per_feature = 1 - (1 - one_row) ** D_SAE
    assert per_feature < 1e-3


def test_sparse_features_data():
    data, features, directions = sparse_features(4096, N_FEATURES, D, p=0.05, seed=0)
    torch.testing.assert_close(directions.norm(dim=1), torch.ones(N_FEATURES))
    torch.testing.assert_close(data.tensors["acts"], features @ directions)
    assert (features > 0).float().mean().item() == pytest.approx(0.05, abs=0.005)
    with pytest.raises(ValueError, match="p=0"):
        sparse_features(10, p=0.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("arch", [dict(l1_coefficient=0.3), dict(architecture="topk", k=2)],
                         ids=["standard", "topk"])
def test_sae_recovers_planted_features(arch, seed):
    data, _, directions = sparse_features(8192, N_FEATURES, D, p=0.05, seed=seed)
    sae = SparseAutoencoder(SAEConfig(d_in=D, d_sae=D_SAE, seed=100 + seed, **arch))
    assert recovery(sae, directions).min() < BOUND  # random rows do not pass
    with one_thread():
        Trainer(sae, data, config=TrainConfig(steps=1000, batch_size=256, lr=1e-2, progress=False, device="cpu",
                                              seed=seed)).fit()
    found = recovery(sae, directions)
    assert found.min() > BOUND, f"features recovered only to cosine {found.tolist()}"
    sae.eval()
    f = sae.encode(data.tensors["acts"][:2048])
    assert (f > 0).sum(-1).float().mean() < 4  # sparse: the true L0 is 32 * 0.05 = 1.6
