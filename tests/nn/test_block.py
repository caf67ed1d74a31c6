"""Pre-LN and post-LN blocks compute exactly their equations."""

import pytest
import torch

from probe import TransformerConfig
from probe.nn.block import TransformerBlock


@pytest.mark.parametrize("norm", ["LN", "RMS"])
def test_pre_and_post_norm_blocks_match_their_equations(norm):
    x = torch.randn(2, 10, 32)
    for placement in ("pre", "post"):
        cfg = TransformerConfig(d_model=32, n_heads=4, normalization_type=norm, norm_placement=placement)
        block = TransformerBlock(cfg, 0, causal=True)
        with torch.no_grad():
            for p in block.parameters():  # non-trivial affine norms too
                p.add_(0.1 * torch.randn_like(p))
        attn, mlp, ln1, ln2 = block.attn, block.mlp, block.ln1, block.ln2
        if placement == "pre":
            mid = x + attn(ln1(x))
            expected = mid + mlp(ln2(mid))
        else:
            mid = ln1(x + attn(x))
            expected = ln2(mid + mlp(mid))
        torch.testing.assert_close(block(x), expected)


def test_hooked_norm_equals_fused_norm():
    cfg = TransformerConfig(d_model=32, n_heads=4)
    block = TransformerBlock(cfg, 0, causal=True)
    x = torch.randn(2, 5, 32)
    fused = block.ln1(x)
    block.ln1.hook_scale.add_hook(lambda t, hook: t)
    torch.testing.assert_close(block.ln1(x), fused)


def test_attn_only_block_has_no_mlp():
    cfg = TransformerConfig(d_model=32, n_heads=4, attn_only=True)
    block = TransformerBlock(cfg, 0, causal=True)
    assert not hasattr(block, "mlp")
    x = torch.randn(1, 4, 32)
    torch.testing.assert_close(block(x), x + block.attn(block.ln1(x)))
