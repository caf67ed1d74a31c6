"""MLP: plain and gated (TransformerLens' W_gate layout and hook_pre_linear), against the formula by hand."""

import pytest
import torch
import torch.nn.functional as F

from probe import TransformerConfig
from probe.nn.mlp import MLP


def randomised(mlp: MLP) -> MLP:
    with torch.no_grad():
        for p in mlp.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return mlp


@pytest.mark.parametrize("act_fn, act", [("silu", F.silu), ("gelu", F.gelu), ("relu", F.relu)])
def test_gated_mlp_computes_act_gate_times_linear(act_fn, act):
    mlp = randomised(MLP(TransformerConfig(d_model=12, n_heads=2, d_mlp=20, gated_mlp=True, act_fn=act_fn)).double())
    assert mlp.W_gate.shape == mlp.W_in.shape == (12, 20) and mlp.W_out.shape == (20, 12)
    x = torch.randn(2, 5, 12, dtype=torch.float64)
    gate, linear = x @ mlp.W_gate + mlp.b_gate, x @ mlp.W_in + mlp.b_in
    expected = (act(gate) * linear) @ mlp.W_out + mlp.b_out
    store = {}
    for name in ("hook_pre", "hook_pre_linear", "hook_post"):
        getattr(mlp, name).add_hook(lambda t, hook, name=name: store.setdefault(name, t))
    torch.testing.assert_close(mlp(x), expected)
    torch.testing.assert_close(store["hook_pre"], gate)
    torch.testing.assert_close(store["hook_pre_linear"], linear)
    torch.testing.assert_close(store["hook_post"], act(gate) * linear)


def test_plain_mlp_has_no_gate():
    mlp = randomised(MLP(TransformerConfig(d_model=12, n_heads=2, d_mlp=20)).double())
    assert not hasattr(mlp, "W_gate") and not hasattr(mlp, "hook_pre_linear")
    x = torch.randn(3, 12, dtype=torch.float64)[None]
    torch.testing.assert_close(mlp(x), F.gelu(x @ mlp.W_in + mlp.b_in) @ mlp.W_out + mlp.b_out)
