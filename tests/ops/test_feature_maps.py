"""Feature maps: the paper's DPFP, FAVOR+'s kernel estimate, sum normalisation, bad input."""

import math

import pytest
import torch

from probe.ops.feature_maps import (
    apply_feature_map,
    dpfp,
    elu_plus_one,
    favor_plus,
    feature_dim,
    orthogonal_random_features,
    sum_normalize,
)


def test_dpfp_matches_paper_definition_elementwise():
    x = torch.randn(3, 5, dtype=torch.float64)
    nu = 2
    r = torch.cat([x.clamp(min=0), (-x).clamp(min=0)], -1)  # [relu(x), relu(-x)]
    d2 = r.shape[-1]
    expected = torch.stack(
        [torch.stack([r[b, i] * r[b, (i - j) % d2] for j in range(1, nu + 1) for i in range(d2)]) for b in range(3)]
    )
    assert torch.equal(dpfp(x, nu), expected)
    assert dpfp(x, 3).shape[-1] == feature_dim("dpfp", 5, nu=3) == 30


def test_elu_plus_one_is_positive_and_sum_normalize_sums_to_one():
    phi = elu_plus_one(torch.randn(4, 7) * 4)
    assert (phi > 0).all()
    assert torch.allclose(sum_normalize(phi).sum(-1), torch.ones(4), atol=1e-5)
    assert (sum_normalize(phi).pow(2).sum(-1) <= 1 + 1e-6).all()


def test_orthogonal_random_features_are_orthogonal_within_a_block():
    w = orthogonal_random_features(8, 8, torch.Generator().manual_seed(0))
    directions = w / w.norm(dim=-1, keepdim=True)
    assert torch.allclose(directions @ directions.T, torch.eye(8), atol=1e-5)
    assert orthogonal_random_features(20, 8).shape == (20, 8)


def test_favor_kernel_estimate_improves_with_m():
    """E[phi(x).phi(y)] = exp(x.y): the mean relative error over seeds shrinks as m grows (Choromanski et al.)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 16, generator=gen) * 0.25, torch.randn(64, 16, generator=gen) * 0.25
    exact = torch.exp((x * y).sum(-1))
    errors = {}
    for m in (4, 64, 1024):
        errs = []
        for seed in range(4):
            w = orthogonal_random_features(m, 16, torch.Generator().manual_seed(seed))
            est = (favor_plus(x, w) * favor_plus(y, w)).sum(-1)
            errs.append(((est - exact).abs() / exact).mean())
        errors[m] = torch.stack(errs).mean().item()
    assert errors[64] < 0.5 * errors[4] and errors[1024] < 0.5 * errors[64], errors
    assert errors[1024] < 0.1, errors
    assert math.isfinite(errors[4])


def test_favor_plus_computes_in_fp32_under_bf16_autocast():
    x = torch.randn(2, 9, 16) * 3
    w = orthogonal_random_features(32, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        phi = favor_plus(x.bfloat16(), w)
    assert phi.dtype == torch.float32 and torch.isfinite(phi).all()


def test_bad_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="nu=0"):
        dpfp(torch.randn(2, 4), 0)
    with pytest.raises(ValueError, match="projection"):
        favor_plus(torch.randn(2, 4), torch.randn(8, 5))
    with pytest.raises(ValueError, match="feature_map='relu'"):
        apply_feature_map("relu", torch.randn(2, 4))
    with pytest.raises(ValueError, match="favor_plus"):
        apply_feature_map("favor_plus", torch.randn(2, 4))
