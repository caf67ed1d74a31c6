"""Delta rule: chunked (WY) form and the equivalent attention matrix against the recurrent reference."""

import pytest
import torch

from probe.ops.delta_rule import delta_rule, delta_rule_fast_weights, delta_rule_pattern
from probe.ops.feature_maps import apply_feature_map, orthogonal_random_features, sum_normalize

MAPS = ["elu_plus_one", "identity", "dpfp", "favor_plus"]


def inputs(name: str, B=2, H=2, T=63, d=8, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    proj = orthogonal_random_features(12, d, gen).to(dtype)
    x = [torch.randn(B, H, T, d, generator=gen, dtype=dtype, requires_grad=True) for _ in range(3)]
    x.append(torch.randn(B, H, T, generator=gen, dtype=dtype, requires_grad=True))
    if name == "identity":
        q, k = (torch.nn.functional.normalize(t, dim=-1) for t in x[:2])
    else:
        q, k = (sum_normalize(apply_feature_map(name, t, nu=2, projection=proj)) for t in x[:2])
    return x, q, k, x[2], torch.sigmoid(x[3])


def grads(out, leaves):
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return torch.autograd.grad((out * w).sum(), leaves, retain_graph=True)


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("chunk", [16, 64])
def test_chunked_matches_recurrent_outputs_and_gradients(name, chunk):
    x, q, k, v, beta = inputs(name)
    ref = delta_rule(q, k, v, beta, form="recurrent")
    out = delta_rule(q, k, v, beta, form="chunked", chunk_size=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
    for g, rg in zip(grads(out, x), grads(ref, x)):
        torch.testing.assert_close(g, rg, rtol=1e-8, atol=1e-9)


def test_recurrent_form_is_the_paper_update():
    """vbar = W k, W += beta (v - vbar) k^T, y = W q, written out for one head."""
    _, q, k, v, beta = inputs("elu_plus_one", B=1, H=1, T=7)
    q, k, v, beta = (t[0, 0].detach() for t in (q, k, v, beta))
    W, ys = torch.zeros(8, 8, dtype=q.dtype), []
    for t in range(7):
        W = W + beta[t] * torch.outer(v[t] - W @ k[t], k[t])
        ys.append(W @ q[t])
    out = delta_rule(q[None, None], k[None, None], v[None, None], beta[None, None])
    torch.testing.assert_close(out[0, 0], torch.stack(ys))
    torch.testing.assert_close(delta_rule_fast_weights(k[None, None], v[None, None], beta[None, None])[0, 0, -1], W)


def test_pattern_view_equals_recurrent_output():
    _, q, k, v, beta = inputs("dpfp")
    torch.testing.assert_close(delta_rule_pattern(q, k, beta) @ v, delta_rule(q, k, v, beta))


def test_beta_one_overwrites_the_stored_value():
    """beta = 1, orthonormal keys: writing (k, v2) after (k, v1) retrieves exactly v2 (the delta rule replaces)."""
    k = torch.eye(4, dtype=torch.float64)[[0, 1, 0]][None, None]
    v = torch.randn(1, 1, 3, 5, dtype=torch.float64)
    out = delta_rule(k, k, v, torch.ones(1, 1, 3, dtype=torch.float64))
    torch.testing.assert_close(out[0, 0, 2], v[0, 0, 2])


@pytest.mark.parametrize("form", ["recurrent", "chunked"])
def test_stable_with_sum_normalised_keys_over_long_sequences(form):
    """||phi'(k)||^2 <= 1, beta in (0, 1): W_t stays bounded (no blow-up) over 2000 steps with large inputs."""
    gen = torch.Generator().manual_seed(1)
    k = sum_normalize(apply_feature_map("elu_plus_one", 5 * torch.randn(1, 2, 2000, 8, generator=gen)))
    q = sum_normalize(apply_feature_map("elu_plus_one", torch.randn(1, 2, 2000, 8, generator=gen)))
    v = torch.randn(1, 2, 2000, 8, generator=gen)
    out, W = delta_rule(q, k, v, torch.ones(1, 2, 2000) * 0.99, form=form, chunk_size=64, return_state=True)
    assert torch.isfinite(out).all()
    # each column of W is a convex-ish mixture of past values: bounded by the largest |v| times sqrt(d_v * d_phi)
    assert W.abs().max() <= v.abs().max() * 8, W.abs().max()
    # the unnormalised keys (||k||^2 >> 2) do blow up: the bound is not vacuous
    k_raw = apply_feature_map("elu_plus_one", 5 * torch.randn(1, 2, 200, 8, generator=gen))
    _, W_raw = delta_rule(q[:, :, :200], k_raw, v[:, :, :200], torch.ones(1, 2, 200) * 0.99, return_state=True)
    assert not torch.isfinite(W_raw).all() or W_raw.abs().max() > 1e6


@pytest.mark.parametrize("form", ["recurrent", "chunked"])
def test_streaming_padding_and_bf16(form):
    _, q, k, v, beta = inputs("elu_plus_one", T=40)
    q, k, v, beta = (t.detach() for t in (q, k, v, beta))
    full = delta_rule(q, k, v, beta, form=form, chunk_size=16)
    a, S = delta_rule(q[:, :, :17], k[:, :, :17], v[:, :, :17], beta[:, :, :17], form=form, chunk_size=16,
                      return_state=True)
    b = delta_rule(q[:, :, 17:], k[:, :, 17:], v[:, :, 17:], beta[:, :, 17:], form=form, chunk_size=16, initial_state=S)
    torch.testing.assert_close(torch.cat([a, b], 2), full)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 10:20] = False
    masked = delta_rule(q, k, v, beta, form=form, chunk_size=16, key_mask=mask)
    keep = mask[1]
    ref = delta_rule(q[1:, :, keep], k[1:, :, keep], v[1:, :, keep], beta[1:, :, keep])
    torch.testing.assert_close(masked[1:, :, keep], ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, S = delta_rule(*(t.float().bfloat16() for t in (q, k, v, beta)), form=form, chunk_size=16,
                            return_state=True)
    assert torch.isfinite(out).all() and S.dtype == torch.float32
    assert (out.double() - full).abs().max() < 0.05 * full.abs().max()


def test_bad_beta_shape():
    _, q, k, v, beta = inputs("elu_plus_one", T=5)
    with pytest.raises(Exception, match="beta"):
        delta_rule(q, k, v, beta[:, :, :4])
    with pytest.raises(ValueError, match="form='parallel'"):
        delta_rule(q, k, v, beta, form="parallel")
