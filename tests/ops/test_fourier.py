"""probe.ops.fourier: the basis of Z_p, spectra, key frequencies, and projections onto the sum directions
(fast form against the naive reference at odd and even p)."""

import math

import pytest
import torch

from probe.ops.fourier import (
    basis_frequency,
    fourier_basis,
    fourier_spectrum,
    key_frequencies,
    n_frequencies,
    sum_projection,
    sum_projection_naive,
)


@pytest.mark.parametrize("p", [2, 7, 10, 13])
def test_basis_is_orthonormal_and_labelled(p):
    basis, names = fourier_basis(p, dtype=torch.float64)
    assert basis.shape == (p, p) and len(names) == p
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    freq = basis_frequency(p)
    assert freq.shape == (p,) and int(freq.max()) == p // 2 == n_frequencies(p) - 1
    assert names[0] == "const" and all(n.endswith(f" {int(k)}") for n, k in zip(names[1:], freq[1:]))


def test_spectrum_of_an_embedding_built_from_two_frequencies():
    p, d = 13, 6
    x = torch.arange(p, dtype=torch.float64)
    emb = torch.zeros(p, d, dtype=torch.float64)
    emb[:, 0] = 3 * torch.cos(2 * math.pi * 5 * x / p)
    emb[:, 1] = 2 * torch.sin(2 * math.pi * 2 * x / p + 0.7)  # any phase stays at frequency 2
    emb[:, 2] = 0.5  # the constant
    spectrum = fourier_spectrum(emb)
    expected = torch.zeros(7, dtype=torch.float64)
    expected[5], expected[2], expected[0] = 9 * p / 2, 4 * p / 2, 0.25 * p
    torch.testing.assert_close(spectrum, expected)
    torch.testing.assert_close(spectrum.sum(), emb.pow(2).sum())
    assert key_frequencies(spectrum, mass=0.6) == [5]  # 9 / 13 of the non-constant power
    assert key_frequencies(spectrum, mass=0.9) == [2, 5]


def test_key_frequencies_take_the_fewest_largest_and_break_ties_low():
    spectrum = torch.tensor([100.0, 1.0, 4.0, 4.0, 1.0])  # the constant does not count
    assert key_frequencies(spectrum, mass=0.5) == [2, 3]
    assert key_frequencies(spectrum, mass=0.4) == [2]
    assert key_frequencies(spectrum, mass=1.0) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="no non-constant power"):
        key_frequencies(torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="mass=0.0"):
        key_frequencies(spectrum, mass=0.0)


@pytest.mark.parametrize("p", [7, 10, 13])
@pytest.mark.parametrize("freqs", [[0], [1], [0, 2, 3], [], "all"])
def test_sum_projection_matches_the_naive_reference(p, freqs):
    freqs = list(range(p // 2 + 1)) if freqs == "all" else freqs
    values = torch.randn(p, p, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(p))
    fast = sum_projection(values, freqs)
    torch.testing.assert_close(fast, sum_projection_naive(values, freqs))
    torch.testing.assert_close(sum_projection(fast, freqs), fast)  # a projection


def test_sum_projection_keeps_functions_of_a_plus_b_and_kills_the_rest():
    p = 11
    a, b = torch.meshgrid(torch.arange(p, dtype=torch.float64), torch.arange(p, dtype=torch.float64), indexing="ij")
    c = torch.arange(p, dtype=torch.float64)
    # cos(w_3 (a + b - c)): lies in the span of the k = 3 sum directions for every output c
    logits = torch.cos(2 * math.pi * 3 * (a[..., None] + b[..., None] - c) / p)
    torch.testing.assert_close(sum_projection(logits, [3]), logits)
    torch.testing.assert_close(sum_projection(logits, [0, 1, 2, 4, 5]), torch.zeros_like(logits))
    # a function of a alone (cos(w_3 a)) is orthogonal to every sum direction
    torch.testing.assert_close(sum_projection(torch.cos(2 * math.pi * 3 * a / p), range(6)),
                               torch.zeros(p, p, dtype=torch.float64))
    # with every frequency, the projection is the mean over each anti-diagonal a + b = s
    x = torch.randn(p, p, dtype=torch.float64)
    s = ((a + b) % p).long()
    means = torch.zeros(p, dtype=torch.float64).index_add_(0, s.flatten(), x.flatten()) / p
    torch.testing.assert_close(sum_projection(x, range(6)), means[s])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\[p, p, \.\.\.\]"):
        sum_projection(torch.zeros(3, 4), [1])
    with pytest.raises(ValueError, match=r"frequencies \[4\]"):
        sum_projection(torch.zeros(7, 7), [4])
    with pytest.raises(ValueError, match="p >= 2"):
        fourier_spectrum(torch.zeros(1, 3))
