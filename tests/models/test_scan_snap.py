"""The reparameterised Scan-and-Snap model of Tian et al. 2023: forward, hooks, c_{l|n}, checkpoints."""

import pytest
import torch

from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import ScanSnapModel, class_attention, distinct_entropy
from probe.models.scan_snap_config import ScanSnapConfig


def test_hooks_and_forward():
    cfg = ScanSnapConfig(num_last=2, seed=0)
    model = ScanSnapModel(cfg)
    tokens, labels = ScanSnapData(cfg).sample(5, torch.Generator().manual_seed(1))
    logits, cache = model.run_with_cache(tokens)
    pattern, bag = cache["hook_pattern"], cache["hook_bag"]
    assert pattern.shape == (5, cfg.seq_len - 1)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(5))
    torch.testing.assert_close(bag.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(logits, bag @ model.Y.detach().T)
    # the bag puts the attention weight of each context position on its token
    manual = torch.zeros(5, cfg.d_vocab).index_put_(
        (torch.arange(5)[:, None].expand_as(pattern), tokens[:, :-1]), pattern, accumulate=True
    )
    torch.testing.assert_close(bag, manual / manual.norm(dim=-1, keepdim=True))
    with pytest.raises(ValueError, match="labels"):
        model(tokens, return_type="loss")


def test_zero_init_attention_is_cond_prob():
    cfg = ScanSnapConfig(init="zero")
    data = ScanSnapData(cfg)
    c = class_attention(ScanSnapModel(cfg).Z.detach(), data.cond_prob(), data.query)
    torch.testing.assert_close(c, data.cond_prob())
    assert abs(distinct_entropy(c, data.mask("distinct")).item() - 2.151) < 1e-3  # the reference's value


def test_checkpoint_round_trip(tmp_path):
    import probe

    model = ScanSnapModel(ScanSnapConfig(num_last=2, seed=5))
    model.save(tmp_path / "ss")
    loaded = probe.load(tmp_path / "ss")
    assert isinstance(loaded, ScanSnapModel) and loaded.cfg == model.cfg
    torch.testing.assert_close(loaded.Z, model.Z)
    torch.testing.assert_close(loaded.Y, model.Y)
