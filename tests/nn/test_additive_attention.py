"""Additive (Bahdanau) attention: scores match the formula by hand; masks, padding, KV cache and hooks as softmax's."""

import math

import pytest
import torch

from probe import Transformer, TransformerConfig
from probe.nn.additive_attention import AdditiveAttention, additive_scores

ADDITIVE = dict(attention="additive", use_attn_scale=False)


def small(**kw):
    base = dict(d_model=16, n_heads=2, n_layers=2, d_vocab=13, n_ctx=16, seed=0, **ADDITIVE)
    return Transformer(TransformerConfig(**{**base, **kw})).eval()


def test_scores_are_w_dot_tanh_of_q_plus_k_by_hand():
    q = torch.tensor([[[[0.5, -1.0]], [[2.0, 0.0]]]])  # [batch 1, pos 2, head 1, d_head 2]
    k = torch.tensor([[[[0.1, 0.2]], [[-0.3, 1.0]], [[0.0, 0.0]]]])  # 3 keys
    w = torch.tensor([[1.5, -2.0]])
    scores = additive_scores(q, k, w)
    assert scores.shape == (1, 1, 2, 3)
    for i in range(2):
        for j in range(3):
            qi, kj = q[0, i, 0].tolist(), k[0, j, 0].tolist()
            by_hand = 1.5 * math.tanh(qi[0] + kj[0]) - 2.0 * math.tanh(qi[1] + kj[1])
            assert scores[0, 0, i, j].item() == pytest.approx(by_hand, abs=1e-6)


def test_module_output_is_pattern_times_values_through_w_o():
    cfg = TransformerConfig(d_model=8, n_heads=2, **ADDITIVE)
    attn = AdditiveAttention(cfg, causal=True).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    q, k, v = attn.project(x, "qkv")
    scores = additive_scores(q, k, attn.W_score).masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), -math.inf)
    z = torch.einsum("bhpk,bkhe->bphe", scores.softmax(-1), v)
    expected = torch.einsum("bphe,hed->bpd", z, attn.W_O) + attn.b_O
    torch.testing.assert_close(attn(x), expected)
    attn.hook_result.add_hook(lambda t, hook: t)  # the per-head path sums to the same output
    torch.testing.assert_close(attn(x), expected)


def test_causal_decoder_never_sees_the_future_and_cache_equals_recompute():
    model = small()
    tokens = torch.randint(0, 13, (2, 9))
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 13
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-4
    cached = model.generate(tokens[:, :4], max_new_tokens=6)
    torch.testing.assert_close(cached, model.generate(tokens[:, :4], max_new_tokens=6, use_cache=False))


def test_encoder_padding_mask_keeps_real_positions_and_hooks_have_their_shapes():
    model = small(arch="encoder", head="token")
    tokens = torch.randint(0, 13, (1, 7))
    padded = torch.cat([tokens, torch.randint(0, 13, (1, 3))], 1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 3)], 1)
    torch.testing.assert_close(model(padded, attention_mask=mask)[:, :7], model(tokens), atol=1e-5, rtol=1e-5)
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.1.attn.hook_attn_scores"].shape == (1, 2, 7, 7)
    assert cache["blocks.1.attn.hook_pattern"].sum(-1).allclose(torch.ones(1, 2, 7))
    assert cache["blocks.0.attn.hook_result"].shape == (1, 7, 2, 16)
    assert model.blocks[0].attn.W_score.shape == (2, 8)
