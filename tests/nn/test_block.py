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


def test_blocks_without_residuals_match_their_equations():
    x = torch.randn(2, 6, 32)
    for placement in ("pre", "post"):
        cfg = TransformerConfig(d_model=32, n_heads=4, norm_placement=placement, residual=False)
        block = TransformerBlock(cfg, 0, causal=True)
        attn, mlp, ln1, ln2 = block.attn, block.mlp, block.ln1, block.ln2
        expected = mlp(ln2(attn(ln1(x)))) if placement == "pre" else ln2(mlp(ln1(attn(x))))
        torch.testing.assert_close(block(x), expected)


def test_tied_qk_shares_one_parameter_and_gives_a_symmetric_qk_circuit():
    cfg = TransformerConfig(d_model=32, n_heads=4, tie_qk=True)
    block = TransformerBlock(cfg, 0, causal=False)
    attn = block.attn
    assert attn.W_K is attn.W_Q and attn.b_K is attn.b_Q
    assert "attn.W_K" not in dict(block.named_parameters())
    qk = attn.W_Q @ attn.W_K.transpose(-2, -1)  # [head d_model d_model]
    torch.testing.assert_close(qk, qk.transpose(-2, -1))
    assert torch.linalg.eigvalsh(qk).min() > -1e-5  # positive semi-definite
    block(torch.randn(2, 5, 32)).square().sum().backward()
    assert attn.W_Q.grad is not None and attn.W_Q.grad.abs().sum() > 0
