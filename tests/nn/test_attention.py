"""Softmax attention: the fused (SDPA) and explicit paths agree; patterns obey their masks; rotary is relative."""

import pytest
import torch

from probe import TransformerConfig
from probe.hooked import is_hooked
from probe.nn.attention import Attention
from probe.nn.positional import Rotary


def make(causal=True, cross=False, **kw):
    cfg = TransformerConfig(**{"d_model": 48, "n_heads": 3, "n_ctx": 128, **kw})
    return Attention(cfg, causal=causal, cross=cross).double()


def run_both(attn, x, **kwargs):
    """Output and input-gradient of the fused path, then of the explicit path (a hook on the pattern)."""
    outs = []
    for hooked in (False, True):
        x_ = x.clone().requires_grad_(True)
        handle = attn.hook_pattern.add_hook(lambda t, hook: t) if hooked else None
        assert is_hooked(attn.hook_pattern) == hooked
        out = attn(x_, **kwargs)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads = [x_.grad] + [p.grad.clone() for p in attn.parameters()]
        attn.zero_grad()
        if handle is not None:
            handle.hook.remove()
        outs.append((out.detach(), grads))
    return outs


@pytest.mark.parametrize(
    "causal,pos,padded",
    [
        (True, "learned", False),
        (False, "learned", False),
        (True, "rotary", False),
        (False, "rotary", True),
        (True, "learned", True),
    ],
)
def test_fused_and_explicit_paths_agree(causal, pos, padded):
    attn = make(causal=causal, positional_embedding_type=pos)
    x = torch.randn(2, 63, 48, dtype=torch.float64)
    mask = None
    if padded:
        mask = torch.ones(2, 63, dtype=torch.bool)
        mask[1, 50:] = False
    (out_f, grads_f), (out_e, grads_e) = run_both(attn, x, key_padding_mask=mask)
    torch.testing.assert_close(out_f, out_e, atol=1e-10, rtol=1e-8)
    for g_f, g_e in zip(grads_f, grads_e):
        torch.testing.assert_close(g_f, g_e, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize(
    "causal,pos,padded,cross",
    [(True, "learned", False, False), (False, "rotary", True, False), (True, "rotary", True, False),
     (False, "learned", True, True)],
)
def test_grouped_query_paths_agree(causal, pos, padded, cross):
    """n_key_value_heads=2 of 6 query heads: fused SDPA (enable_gqa) and the explicit path, fp64, T=63."""
    attn = make(causal=causal, cross=cross, d_model=36, n_heads=6, n_key_value_heads=2, positional_embedding_type=pos)
    assert attn.W_K.shape == attn.W_V.shape == (2, 36, 6)  # two key/value heads, each serving three query heads
    x = torch.randn(2, 63, 36, dtype=torch.float64)
    kwargs = {"kv": torch.randn(2, 41, 36, dtype=torch.float64)} if cross else {}
    n_k = 41 if cross else 63
    mask = None
    if padded:
        mask = torch.ones(2, n_k, dtype=torch.bool)
        mask[1, n_k - 13:] = False
    (out_f, grads_f), (out_e, grads_e) = run_both(attn, x, key_padding_mask=mask, **kwargs)
    torch.testing.assert_close(out_f, out_e, atol=1e-10, rtol=1e-8)
    for g_f, g_e in zip(grads_f, grads_e):
        torch.testing.assert_close(g_f, g_e, atol=1e-10, rtol=1e-8)


def test_grouped_query_attention_is_attention_with_shared_key_value_heads():
    """TransformerLens' layout: W_K, W_V and hook_k, hook_v hold the kv heads; query head h reads kv head
    h // (n_heads / n_kv). Repeating each kv head's weights gives an ordinary attention with the same output."""
    gqa = make(d_model=36, n_heads=6, n_key_value_heads=2, positional_embedding_type="rotary")
    mha = make(d_model=36, n_heads=6, positional_embedding_type="rotary")
    assert gqa.W_K.shape == gqa.W_V.shape == (2, 36, 6) and gqa.b_K.shape == (2, 6) and gqa.W_Q.shape == (6, 36, 6)
    with torch.no_grad():
        for p in gqa.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name in ("W_Q", "b_Q", "W_O", "b_O"):
            getattr(mha, name).copy_(getattr(gqa, name))
        for name in ("W_K", "W_V", "b_K", "b_V"):
            getattr(mha, name).copy_(getattr(gqa, name).repeat_interleave(3, dim=0))
    x = torch.randn(2, 11, 36, dtype=torch.float64)
    store = {}
    gqa.hook_k.add_hook(lambda t, hook: store.setdefault("k", t))
    out = gqa(x)
    gqa.hook_k.remove_hooks()
    assert store["k"].shape == (2, 11, 2, 6)
    torch.testing.assert_close(out, mha(x))
    # and the KV cache keeps the kv heads only
    cache: dict = {}
    steps = [gqa(x[:, :4], cache=cache)] + [gqa(x[:, t : t + 1], cache=cache) for t in range(4, 11)]
    assert cache["k"].shape == (2, 11, 2, 6)
    torch.testing.assert_close(torch.cat(steps, 1), out)


def test_cross_attention_paths_agree():
    attn = make(cross=True)
    x, memory = torch.randn(2, 7, 48, dtype=torch.float64), torch.randn(2, 11, 48, dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[0, 9:] = False
    (out_f, _), (out_e, _) = run_both(attn, x, kv=memory, key_padding_mask=mask)
    torch.testing.assert_close(out_f, out_e, atol=1e-10, rtol=1e-8)


def capture_pattern(attn, x, **kwargs):
    store = {}
    attn.hook_pattern.add_hook(lambda t, hook: store.setdefault("p", t))
    attn(x, **kwargs)
    attn.hook_pattern.remove_hooks()
    return store["p"]


def test_pattern_rows_sum_to_one_and_respect_causal_and_padding_masks():
    attn = make(causal=True)
    x = torch.randn(3, 20, 48, dtype=torch.float64)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[2, 15:] = False
    pattern = capture_pattern(attn, x, key_padding_mask=mask)
    assert pattern.shape == (3, 3, 20, 20)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(3, 3, 20, dtype=torch.float64))
    future = torch.ones(20, 20, dtype=torch.bool).triu(1)
    assert pattern[..., future].abs().max() == 0
    assert pattern[2, :, :15, 15:].abs().max() == 0  # real queries never look at padded keys


def test_rotary_scores_depend_only_on_relative_offset():
    cfg = TransformerConfig(d_model=32, n_heads=2, positional_embedding_type="rotary", rotary_dim=12)
    rot = Rotary(cfg).double()
    a, b = torch.randn(1, 1, 1, 16, dtype=torch.float64), torch.randn(1, 1, 1, 16, dtype=torch.float64)

    def score(i, j):
        return (rot(a, offset=i) * rot(b, offset=j)).sum()

    for i, j, shift in [(3, 1, 7), (0, 5, 11), (10, 10, 40)]:
        torch.testing.assert_close(score(i, j), score(i + shift, j + shift))
    assert not torch.isclose(score(3, 1), score(3, 2))  # and it does depend on the offset
    torch.testing.assert_close(rot(a, offset=5).norm(), a.norm())  # a rotation


def test_hook_result_is_per_head_split_of_the_output():
    attn = make()
    x = torch.randn(2, 9, 48, dtype=torch.float64)
    plain = attn(x)
    store = {}
    attn.hook_result.add_hook(lambda t, hook: store.setdefault("r", t))
    hooked = attn(x)
    attn.hook_result.remove_hooks()
    assert store["r"].shape == (2, 9, 3, 48)
    torch.testing.assert_close(hooked, plain)
    torch.testing.assert_close(store["r"].sum(2) + attn.b_O, plain)
