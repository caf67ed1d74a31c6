"""Short causal depthwise convolution: matches the naive loop (outputs and gradients), is causal, streams through a
cache, and is wired into the block behind `hook_short_conv`."""

import pytest
import torch

from probe import Transformer, TransformerConfig
from probe.nn.short_conv import ShortConv, short_conv_naive


@pytest.mark.parametrize("kernel,T", [(1, 5), (2, 63), (4, 63), (4, 2)])
def test_matches_naive_loop_in_outputs_and_gradients(kernel, T):
    torch.manual_seed(0)
    conv = ShortConv(TransformerConfig(d_model=12, n_heads=2, short_conv=kernel)).double()
    with torch.no_grad():
        conv.b.normal_()
    x = torch.randn(3, T, 12, dtype=torch.double)
    grads = []
    for fn in (conv, lambda t: short_conv_naive(t, conv.W, conv.b)):
        x_ = x.clone().requires_grad_(True)
        out = fn(x_)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append((out.detach(), x_.grad, conv.W.grad.clone(), conv.b.grad.clone()))
        conv.zero_grad()
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_causal_and_reaches_exactly_kernel_minus_one_back():
    conv = ShortConv(TransformerConfig(d_model=8, n_heads=1, short_conv=3)).double()
    x = torch.randn(2, 10, 8, dtype=torch.double)
    x2 = x.clone()
    x2[:, 6] += 1.0
    changed = (conv(x2) - conv(x)).abs().amax((0, 2)) > 0
    assert changed.tolist() == [False] * 6 + [True] * 3 + [False]  # positions 6, 7, 8 see x_6; none before it


def test_model_with_short_conv_streams_through_the_cache_and_is_hooked():
    cfg = TransformerConfig(d_model=16, n_heads=2, d_vocab=20, n_ctx=32, short_conv=3, attention="linear")
    model = Transformer(cfg).double()
    tokens = torch.randint(0, 20, (2, 9))
    full = model(tokens)
    caches = [{} for _ in model.blocks]
    steps = [model(tokens[:, :4], caches=caches)] + [model(tokens[:, t : t + 1], caches=caches) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, 1), full)
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.0.hook_short_conv"].shape == (2, 9, 16)
    zeroed = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_short_conv", lambda t, hook: t * 0)])
    assert not torch.allclose(zeroed, full)


def test_bad_kernel_and_non_decoder_are_rejected():
    with pytest.raises(ValueError, match="short_conv=-1"):
        TransformerConfig(short_conv=-1)
    with pytest.raises(ValueError, match="short_conv=2 .*arch='decoder'"):
        TransformerConfig(short_conv=2, arch="encoder")
    assert not hasattr(Transformer(TransformerConfig(d_model=8, n_heads=1)).blocks[0], "hook_short_conv")


@pytest.mark.parametrize("attention", ["softmax", "linear"])
def test_left_padding_does_not_reach_real_tokens_through_the_conv(attention):
    """Without positions, a left-padded sequence gives the unpadded sequence's logits on its real tokens."""
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=11, n_ctx=12, short_conv=3,
                            positional_embedding_type="none", attention=attention)
    model = Transformer(cfg)
    x = torch.randint(0, 11, (2, 6))
    padded = torch.cat([torch.randint(0, 11, (2, 3)), x], 1)
    mask = torch.cat([torch.zeros(2, 3), torch.ones(2, 6)], 1).long()
    torch.testing.assert_close(model(padded, attention_mask=mask)[:, 3:], model(x), atol=1e-5, rtol=1e-5)
