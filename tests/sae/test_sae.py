"""The SAE module: config validation, the two losses against hand computation, TopK sparsity, dead-latent tracking,
AuxK, and the checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

import probe
from probe import TrainConfig, Trainer
from probe.data.dataset import DictDataset
from probe.sae import SAEConfig, SparseAutoencoder
from tests.sae.helpers import identity_sae


@pytest.mark.parametrize("kw, match", [
    (dict(architecture="topk"), "needs k"),
    (dict(architecture="topk", k=65), "needs k"),
    (dict(k=3), "applies to architecture='topk' only"),
    (dict(architecture="topk", k=2, l1_coefficient=0.5), "no L1 term"),
    (dict(architecture="relu"), "architecture='relu' is not one of"),
    (dict(head=-1), "head=-1"),
    (dict(d_sae=0), "d_sae"),
    (dict(l1_coefficient=-1.0), "must be >= 0"),
])
def test_config_refuses_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        SAEConfig(**kw)


def test_config_round_trip_and_unknown_fields():
    cfg = SAEConfig(d_in=4, d_sae=8, architecture="topk", k=2, hook="blocks.0.hook_resid_post", head=None)
    assert SAEConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown fields"):
        SAEConfig.from_dict({**cfg.to_dict(), "normalize": True})


def test_standard_loss_by_hand():
    sae = SparseAutoencoder(SAEConfig(d_in=2, d_sae=2, l1_coefficient=0.5))
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        sae.b_enc.copy_(torch.tensor([0.0, -1.0]))
        sae.W_dec.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        sae.b_dec.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([[1.0, 2.0]])
    # x - b_dec = [1, 1]; pre = [1, 2 - 1] = [1, 1]; f = [1, 1]; x_hat = [2, 1] + [0, 1] = [2, 2]
    # mse = (2 - 1)^2 + 0 = 1; penalty = 1 * ||[2, 0]|| + 1 * ||[0, 1]|| = 3; loss = 1 + 0.5 * 3 = 2.5
    torch.testing.assert_close(sae.encode(x), torch.tensor([[1.0, 1.0]]))
    x_hat, loss = sae(x, return_type="both")
    torch.testing.assert_close(x_hat, torch.tensor([[2.0, 2.0]]))
    assert loss.item() == pytest.approx(2.5)


def test_topk_keeps_k_largest_and_relu():
    sae = SparseAutoencoder(SAEConfig(d_in=3, d_sae=3, architecture="topk", k=2))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(3))
        sae.b_enc.zero_(), sae.b_dec.zero_()
    f = sae.encode(torch.tensor([[3.0, -1.0, 2.0], [-1.0, -2.0, 0.5]]))
    torch.testing.assert_close(f, torch.tensor([[3.0, 0.0, 2.0], [0.0, 0.0, 0.5]]))  # the 2nd row's top-2 has -1 -> 0
    x = torch.randn(64, 3)
    sae_big = SparseAutoencoder(SAEConfig(d_in=3, d_sae=16, architecture="topk", k=4))
    assert ((sae_big.encode(x) > 0).sum(-1) <= 4).all()
    loss = sae(x, return_type="loss")  # in training mode with no dead latents: the MSE alone
    assert loss.item() == pytest.approx((sae(x, return_type="reconstruction") - x).pow(2).sum(-1).mean().item())


def test_dead_latents_are_counted_in_training_rows_only():
    sae = SparseAutoencoder(SAEConfig(d_in=2, d_sae=4, dead_window=10))
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]))
        sae.b_enc.zero_(), sae.b_dec.zero_()
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # positive: latents 1 and 3 never fire
    sae(x)
    assert sae.tokens_since_fired.tolist() == [0, 3, 0, 3]
    sae(x), sae(x)
    assert sae.dead().tolist() == [False, False, False, False]
    sae(x)
    assert sae.dead().tolist() == [False, True, False, True]  # 12 rows >= dead_window
    sae(-x)  # now latents 1 and 3 fire and 0 and 2 fall silent
    assert sae.tokens_since_fired.tolist() == [3, 0, 3, 0]
    sae.eval()
    sae(x)
    assert sae.tokens_since_fired.tolist() == [3, 0, 3, 0]  # evaluation does not count


def test_auxk_trains_dead_latents_only_when_there_are_some():
    cfg = SAEConfig(d_in=4, d_sae=8, architecture="topk", k=1, dead_window=1, aux_coefficient=1.0)
    sae = SparseAutoencoder(cfg)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert sae.aux_loss(x, sae.pre_activations(x)).item() == 0.0  # nothing dead yet
    sae(x)  # k=1 on 3 rows: at most 3 of 8 latents fire; dead_window=1 marks the silent ones dead
    dead = sae.dead()
    assert dead.any() and not dead.all()
    sae.zero_grad()
    sae(x).backward()
    live_only = SparseAutoencoder(cfg)
    live_only.load_state_dict(sae.state_dict())
    live_only.tokens_since_fired.zero_()
    live_only(x).backward()
    # the dead latents' encoder columns get gradient only through AuxK
    assert sae.W_enc.grad[:, dead].abs().sum() > 0
    assert live_only.W_enc.grad[:, dead].abs().sum() == 0


def test_bad_input_and_return_type():
    sae = SparseAutoencoder(SAEConfig(d_in=4, d_sae=8))
    with pytest.raises(ValueError, match=r"shape \[batch, d_in=4\], got \(2, 5\)"):
        sae(torch.randn(2, 5))
    with pytest.raises(TypeError, match="(?i)float"):
        sae(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="an SAE has no logits"):
        sae(torch.randn(2, 4), return_type="logits")
    with pytest.raises(TypeError, match="SAEConfig"):
        SparseAutoencoder({"d_in": 4})


def test_checkpoint_round_trip_through_probe_load_and_the_trainer(tmp_path):
    data = DictDataset(acts=torch.randn(64, 4, generator=torch.Generator().manual_seed(0)))
    sae = SparseAutoencoder(SAEConfig(d_in=4, d_sae=8, architecture="topk", k=2, hook="blocks.0.hook_resid_post"))
    Trainer(sae, data, config=TrainConfig(steps=3, batch_size=16, out_dir=str(tmp_path / "run"), progress=False,
                                          device="cpu")).fit()
    loaded = probe.load(tmp_path / "run")
    assert isinstance(loaded, SparseAutoencoder) and loaded.cfg == sae.cfg
    sae.eval()
    torch.testing.assert_close(loaded(data.tensors["acts"], return_type="reconstruction"),
                               sae(data.tensors["acts"], return_type="reconstruction"))
    assert torch.equal(loaded.tokens_since_fired, sae.tokens_since_fired)
    kinds = {c["kind"] for c in probe.list_checkpoints(tmp_path)}
    assert kinds == {"sae"}


def test_identity_sae_reconstructs_exactly():
    sae = identity_sae(5)
    x = torch.randn(10, 5)
    assert torch.equal(sae(x, return_type="reconstruction"), x)
