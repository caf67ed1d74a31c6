"""The Fourier basis of Z_p and projections onto the directions cos(w_k(a + b)), sin(w_k(a + b)).

Nanda et al. 2023 ("Progress measures for grokking via mechanistic interpretability", sections 4-5): a transformer
that has grokked (a + b) mod p embeds each number through a handful of key frequencies k (w_k = 2 pi k / p) and
its logits are built from cos(w_k(a + b - c)) = cos(w_k(a + b)) cos(w_k c) + sin(w_k(a + b)) sin(w_k c), i.e. for
every output c they lie in the span of the "sum directions" cos(w_k(a + b)), sin(w_k(a + b)) over the input grid.

- `fourier_basis(p)`: the orthonormal basis of R^p: the constant 1/sqrt(p), then cos(w_k x) and sin(w_k x)
  (normalised) for k = 1 .. (p - 1) // 2, and cos(pi x) when p is even. `basis_frequency(p)` maps rows to k.
- `fourier_spectrum(x)`: the squared norm of x's Fourier coefficients along its first axis, summed per frequency.
- `key_frequencies(spectrum, mass)`: the fewest non-constant frequencies holding `mass` of the non-constant norm.
- `sum_projection(values, freqs)`: project a function of (a, b) onto the sum directions of `freqs` (0 = the
  constant). Fast form: a function of (a + b) mod p only needs the sums over each anti-diagonal, so the projection is
  Q[(a + b) mod p] with Q = F_K^T F_K S / p, S[s] = sum over a + b = s of values[a, b]; `sum_projection_naive`
  builds the p^2-long direction vectors and projects on them (the reference the tests compare against).

Dimensions: a, b the two inputs (p each), x a residue, f a basis row, k a frequency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor


def _check_p(p: int) -> None:
    if not isinstance(p, int) or isinstance(p, bool) or p < 2:
        raise ValueError(f"p={p!r} must be an integer >= 2")


def n_frequencies(p: int) -> int:
    """Frequencies 0 (the constant) .. p // 2."""
    _check_p(p)
    return p // 2 + 1


def basis_frequency(p: int) -> Int[Tensor, " f"]:
    """The frequency of each row of `fourier_basis(p)`: [0, 1, 1, 2, 2, ...] (+ [p / 2] when p is even)."""
    _check_p(p)
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(2, p + 1) // 2])


def fourier_basis(p: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                  ) -> tuple[Float[Tensor, "f x"], list[str]]:
    """Orthonormal rows: const, cos 1, sin 1, cos 2, sin 2, ... (and cos p/2 for even p), with their names."""
    _check_p(p)
    x = torch.arange(p, dtype=torch.float64)
    rows, names = [torch.ones(p, dtype=torch.float64)], ["const"]
    for k in range(1, p // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        names.append(f"cos {k}")
        if 2 * k != p:
            rows.append(torch.sin(2 * math.pi * k * x / p))
            names.append(f"sin {k}")
    basis = torch.stack(rows)
    basis = basis / basis.norm(dim=1, keepdim=True)
    return basis.to(dtype=dtype, device=device), names


def fourier_spectrum(x: Float[Tensor, "x *rest"]) -> Float[Tensor, " k"]:
    """Squared norm of x's Fourier coefficients along axis 0 (length p), summed over the other axes and over the
    cos and sin of each frequency: [const, k = 1, ..., p // 2]. The entries sum to ||x||^2."""
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"x must have shape [p, ...] with p >= 2 residues along axis 0, got {tuple(x.shape)}")
    p = x.shape[0]
    basis, _ = fourier_basis(p, dtype=x.dtype, device=x.device)
    power = (basis @ x.reshape(p, -1)).pow(2).sum(1)
    return torch.zeros(n_frequencies(p), dtype=x.dtype, device=x.device).index_add_(
        0, basis_frequency(p).to(x.device), power)


def key_frequencies(spectrum: Float[Tensor, " k"], mass: float = 0.9) -> list[int]:
    """The fewest non-constant frequencies, largest first, whose share of the non-constant power reaches `mass`
    (ties: the lower frequency first). `spectrum` is `fourier_spectrum`'s output, index = frequency."""
    if spectrum.ndim != 1 or spectrum.numel() < 2:
        raise ValueError(f"spectrum must be 1-d [const, k=1, ...] with at least one frequency, got "
                         f"{tuple(spectrum.shape)}")
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass={mass!r} must be in (0, 1]")
    power = spectrum[1:].double()
    if (power < 0).any() or not torch.isfinite(power).all():
        raise ValueError("spectrum must hold finite non-negative powers")
    total = power.sum()
    if total == 0:
        raise ValueError("spectrum has no non-constant power: no frequency is key")
    order = torch.sort(-power, stable=True).indices
    cumulative = power[order].cumsum(0) / total
    n = int((cumulative < mass - 1e-12).sum()) + 1
    return sorted(int(k) + 1 for k in order[:n])


def _check_freqs(freqs: Sequence[int], p: int) -> list[int]:
    freqs = sorted({int(k) for k in freqs})
    bad = [k for k in freqs if not 0 <= k <= p // 2]
    if bad:
        raise ValueError(f"frequencies {bad} are not in [0, p // 2 = {p // 2}] for p={p}")
    return freqs


def _check_grid(values: Tensor) -> int:
    if values.ndim < 2 or values.shape[0] != values.shape[1] or values.shape[0] < 2:
        raise ValueError(f"values must have shape [p, p, ...] (a, b, ...), got {tuple(values.shape)}")
    return values.shape[0]


def sum_projection(values: Float[Tensor, "a b *rest"], freqs: Sequence[int]) -> Float[Tensor, "a b *rest"]:
    """Orthogonal projection of `values` (a function of the inputs a, b for every trailing index) onto the span of
    cos(w_k(a + b)), sin(w_k(a + b)) for k in `freqs` (k = 0: the constant)."""
    p = _check_grid(values)
    freqs = _check_freqs(freqs, p)
    basis, _ = fourier_basis(p, dtype=values.dtype, device=values.device)
    rows = basis[torch.isin(basis_frequency(p).to(values.device), torch.tensor(freqs, device=values.device))]
    s = (torch.arange(p, device=values.device)[:, None] + torch.arange(p, device=values.device)[None]) % p
    sums = torch.zeros((p, *values.shape[2:]), dtype=values.dtype, device=values.device).index_add_(
        0, s.flatten(), values.flatten(0, 1))
    q = torch.tensordot(rows.T, torch.tensordot(rows, sums, dims=1), dims=1) / p
    return q[s]


def sum_projection_naive(values: Float[Tensor, "a b *rest"], freqs: Sequence[int]) -> Float[Tensor, "a b *rest"]:
    """Reference for `sum_projection`: build each direction over the p^2 grid, normalise it, project on it."""
    p = _check_grid(values)
    a, b = torch.meshgrid(torch.arange(p, dtype=torch.float64), torch.arange(p, dtype=torch.float64), indexing="ij")
    directions = []
    for k in _check_freqs(freqs, p):
        angle = 2 * math.pi * k * (a + b) / p
        directions.append(torch.cos(angle).flatten())
        if k != 0 and 2 * k != p:
            directions.append(torch.sin(angle).flatten())
    flat = values.reshape(p * p, -1).double()
    out = torch.zeros_like(flat)
    for d in directions:
        d = d / d.norm()
        out += d[:, None] * (d @ flat)[None]
    return out.reshape(values.shape).to(values.dtype)
