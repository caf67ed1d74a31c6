"""Sum-rule linear attention: parallel and chunked forms against the recurrent fast-weight reference."""

import pytest
import torch
from jaxtyping import TypeCheckError

from probe.ops.feature_maps import apply_feature_map, orthogonal_random_features
from probe.ops.linear_attention import (
    causal_linear_attention,
    linear_attention,
    linear_attention_pattern,
    sum_rule_fast_weights,
)

MAPS = ["elu_plus_one", "identity", "dpfp", "favor_plus"]


def features(name: str, B=2, H=2, T=63, d=8, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    proj = orthogonal_random_features(12, d, gen).to(dtype)
    x = [torch.randn(B, H, T, d, generator=gen, dtype=dtype, requires_grad=True) for _ in range(3)]
    q, k = (apply_feature_map(name, t * 0.5, nu=2, projection=proj) for t in x[:2])
    return x, q, k, x[2]


def grads(out: torch.Tensor, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return torch.autograd.grad((out * w).sum(), leaves, retain_graph=True)


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("chunk", [16, 64])
def test_forms_agree_outputs_and_gradients(name, chunk):
    normalize = name != "identity"
    x, q, k, v = features(name)
    ref = causal_linear_attention(q, k, v, form="recurrent", normalize=normalize)
    ref_g = grads(ref, x)
    for form in ("parallel", "chunked"):
        out = causal_linear_attention(q, k, v, form=form, normalize=normalize, chunk_size=chunk)
        torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
        for g, rg in zip(grads(out, x), ref_g):
            torch.testing.assert_close(g, rg, rtol=1e-8, atol=1e-9)


def test_recurrent_form_is_the_fast_weight_definition():
    """y_t = W_t phi(q_t) / (z_t . phi(q_t) + eps), W_t = sum_{s<=t} v_s phi(k_s)^T, written out by hand."""
    _, q, k, v = features("elu_plus_one", B=1, H=1, T=9)
    q, k, v = q[0, 0].detach(), k[0, 0].detach(), v[0, 0].detach()
    ys = []
    for t in range(9):
        W = sum(torch.outer(v[s], k[s]) for s in range(t + 1))
        ys.append(W @ q[t] / (k[: t + 1].sum(0) @ q[t] + 1e-6))
    out = causal_linear_attention(q[None, None], k[None, None], v[None, None], form="recurrent")
    torch.testing.assert_close(out[0, 0], torch.stack(ys))
    W_all = sum_rule_fast_weights(k[None, None], v[None, None])
    torch.testing.assert_close(W_all[0, 0, 4], sum(torch.outer(v[s], k[s]) for s in range(5)))


def test_pattern_view_equals_fast_weight_view():
    _, q, k, v = features("dpfp")
    a = linear_attention_pattern(q, k)
    torch.testing.assert_close(a @ v, causal_linear_attention(q, k, v, form="recurrent"))
    _, q, k, _ = features("elu_plus_one")
    a = linear_attention_pattern(q, k)
    torch.testing.assert_close(a.sum(-1), torch.ones_like(a[..., 0]), atol=1e-5, rtol=0)
    assert (a.triu(1) == 0).all()


@pytest.mark.parametrize("form", ["parallel", "recurrent", "chunked"])
def test_streaming_with_initial_state_equals_one_pass(form):
    _, q, k, v = features("elu_plus_one", T=50)
    full = causal_linear_attention(q, k, v, form=form, chunk_size=7)
    a, state = causal_linear_attention(q[:, :, :23], k[:, :, :23], v[:, :, :23], form=form, chunk_size=7,
                                       return_state=True)
    b = causal_linear_attention(q[:, :, 23:], k[:, :, 23:], v[:, :, 23:], form=form, chunk_size=7, initial_state=state)
    torch.testing.assert_close(torch.cat([a, b], 2), full)


@pytest.mark.parametrize("form", ["parallel", "recurrent", "chunked"])
def test_padded_keys_never_enter_the_output(form):
    """Padding at the end of sequence 0: changing the padded keys/values changes nothing anywhere."""
    _, q, k, v = features("elu_plus_one", T=20)
    q, k, v = q.detach(), k.detach(), v.detach()
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[0, 5:9] = False
    out = causal_linear_attention(q, k, v, form=form, chunk_size=8, key_mask=mask)
    k2, v2 = k.clone(), v.clone()
    k2[0, :, 5:9] *= 100
    v2[0, :, 5:9] = 1e3
    torch.testing.assert_close(causal_linear_attention(q, k2, v2, form=form, chunk_size=8, key_mask=mask), out)
    # same as dropping those keys: attention over the kept positions only
    keep = mask[0]
    ref = causal_linear_attention(q[:1, :, keep], k[:1, :, keep], v[:1, :, keep], form="recurrent")
    torch.testing.assert_close(out[:1, :, keep], ref)


def test_noncausal_linear_attention_matches_its_pattern():
    _, q, k, v = features("elu_plus_one", T=11)
    a = linear_attention_pattern(q, k, causal=False)
    torch.testing.assert_close(linear_attention(q, k, v), a @ v)


@pytest.mark.parametrize("form", ["parallel", "recurrent", "chunked"])
def test_no_nan_under_bf16_autocast_and_state_in_fp32(form):
    _, q, k, v = features("elu_plus_one", T=40, dtype=torch.float32)
    q, k, v = (t.detach().bfloat16() * 30 for t in (q, k, v))  # large keys: fp16/bf16 key sums would lose precision
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = causal_linear_attention(q, k, v, form=form, chunk_size=16, return_state=True)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert state.W.dtype == torch.float32 and state.z.dtype == torch.float32
    ref = causal_linear_attention(q.float(), k.float(), v.float(), form="recurrent")
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_bad_arguments():
    _, q, k, v = features("elu_plus_one", T=5)
    with pytest.raises(ValueError, match="form='fast'"):
        causal_linear_attention(q, k, v, form="fast")
    with pytest.raises(ValueError, match="chunk_size=0"):
        causal_linear_attention(q, k, v, form="chunked", chunk_size=0)
    with pytest.raises((ValueError, TypeCheckError), match="key_mask"):  # jaxtyping under pytest, ours elsewhere
        causal_linear_attention(q, k, v, key_mask=torch.ones(2, 4, dtype=torch.bool))
