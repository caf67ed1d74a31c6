"""The Scan-and-Snap generator (probe.data.scan_snap) against P(l | n) of Tian et al. 2023 / luckmatters Dataset2."""

import pytest
import torch

from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap_config import ScanSnapConfig


def test_layout_matches_dataset2():
    cfg = ScanSnapConfig(num_last=1, num_next_per_last=2)  # the Figure-6 log: M = 33, query 30, next 31 and 32
    data = ScanSnapData(cfg)
    assert cfg.d_vocab == 33
    assert data.query.tolist() == [30, 30] and data.next.tolist() == [31, 32]
    assert data.tokens[1].tolist() == list(range(10)) + list(range(20, 30))
    assert torch.allclose(data.probs[0, :10], torch.full((10,), 1 / 15.5))
    assert torch.allclose(data.probs[0, 10:], torch.linspace(0.1, 1.0, 10) / 15.5)
    assert ScanSnapConfig(num_last=10).d_vocab == 10 + 200 + 10 + 20


def test_empirical_frequencies_match_cond_prob():
    cfg = ScanSnapConfig(num_last=2, num_next_per_last=2, num_common_per_last=3, seq_len=64)
    data = ScanSnapData(cfg)
    tokens, labels = data.sample(4000, torch.Generator().manual_seed(0))
    assert (tokens[:, -1] == data.query[labels - cfg.next_offset]).all()  # the query token is psi(n)
    P = data.cond_prob()
    n_ctx = cfg.seq_len - 1
    for f in range(data.num_classes):
        rows = tokens[labels == data.next[f], :-1]
        assert abs(len(rows) / len(tokens) - 1 / data.num_classes) < 0.03  # classes uniform
        freq = torch.bincount(rows.flatten(), minlength=cfg.d_vocab).float() / rows.numel()
        sigma = (P[f] * (1 - P[f]) / (len(rows) * n_ctx)).sqrt()
        assert ((freq - P[f]).abs() <= 5 * sigma + 1e-6).all(), (freq - P[f]).abs().max()
        assert freq[P[f] == 0].sum() == 0  # no token outside the class's support


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="num_last"):
        ScanSnapConfig(num_last=0)
    with pytest.raises(ValueError, match="init"):
        ScanSnapConfig(init="xavier")
    with pytest.raises(ValueError, match="batch"):
        ScanSnapData(ScanSnapConfig()).sample(0)
