"""Feature maps phi for linear attention (kernels k(q, k) = phi(q) . phi(k)).

- `elu_plus_one`: Katharopoulos et al. 2020, phi(x) = elu(x) + 1, d_phi = d.
- `dpfp`: Schlag, Irie, Schmidhuber 2021 (eq. 37), r = [relu(x), relu(-x)], phi = concat_{j=1..nu} r * roll(r, j),
  d_phi = 2 nu d. (flash-linear-attention's DPFP differs from the paper; this one follows the paper.)
- `favor_plus`: Choromanski et al. 2021, positive random features with orthogonal w_i, computed in fp32:
  phi(x) = (2m)^-1/2 [exp(w_i.x - |x|^2/2), exp(-w_i.x - |x|^2/2)], d_phi = 2m, E[phi(x).phi(y)] = exp(x.y).
- `sum_normalize`: Schlag et al. section 4.2, phi'(x) = phi(x) / sum_j phi(x)_j.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

FEATURE_MAPS = ("elu_plus_one", "identity", "dpfp", "favor_plus")


def elu_plus_one(x: Float[Tensor, "*batch d"]) -> Float[Tensor, "*batch d"]:
    return F.elu(x) + 1.0


def identity(x: Float[Tensor, "*batch d"]) -> Float[Tensor, "*batch d"]:
    return x


def dpfp(x: Float[Tensor, "*batch d"], nu: int = 1) -> Float[Tensor, "*batch d_phi"]:
    """Deterministic parameter-free projection: d_phi = 2 * nu * d."""
    if not isinstance(nu, int) or not 1 <= nu < 2 * x.shape[-1]:
        raise ValueError(f"nu={nu!r} must be an integer in [1, 2 * d = {2 * x.shape[-1]})")
    r = torch.cat([F.relu(x), F.relu(-x)], dim=-1)
    return torch.cat([r * torch.roll(r, shifts=j, dims=-1) for j in range(1, nu + 1)], dim=-1)


def orthogonal_random_features(
    m: int, d: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> Float[Tensor, "m d"]:
    """m Gaussian directions, orthogonal within blocks of d, rows rescaled to chi(d) norms (Performer's ORF)."""
    if not isinstance(m, int) or m < 1:
        raise ValueError(f"m={m!r} must be an integer >= 1 (number of random features)")
    blocks = []
    for _ in range(-(-m // d)):
        g = torch.randn(d, d, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(g)
        blocks.append((q * torch.sign(torch.diagonal(r))).T)  # sign fix: Haar-distributed rows
    w = torch.cat(blocks)[:m]
    norms = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=-1, keepdim=True)
    return (w * norms).float().to(device)


def favor_plus(x: Float[Tensor, "*batch d"], projection: Float[Tensor, "m d_proj"]) -> Float[Tensor, "*batch two_m"]:
    """Positive orthogonal random features of the softmax kernel exp(x.y); computed in fp32 (fp16 overflows)."""
    if projection.shape[-1] != x.shape[-1]:
        raise ValueError(f"projection has shape {tuple(projection.shape)}; expected [m, d={x.shape[-1]}]")
    with torch.autocast(device_type=x.device.type, enabled=False):
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))
        wx = x32 @ projection.to(x32.dtype).T
        half_sq = 0.5 * x32.pow(2).sum(-1, keepdim=True)
        m = projection.shape[0]
        return torch.cat([torch.exp(wx - half_sq), torch.exp(-wx - half_sq)], dim=-1) * (2 * m) ** -0.5


def sum_normalize(x: Float[Tensor, "*batch d"], eps: float = 1e-6) -> Float[Tensor, "*batch d"]:
    """phi / sum(phi): for non-negative features, ||phi'||^2 <= 1, which keeps the delta rule stable."""
    return x / (x.sum(-1, keepdim=True) + eps)


def feature_dim(name: str, d: int, nu: int = 1, m: int = 64) -> int:
    """d_phi of feature map `name` on d-dimensional inputs."""
    dims = {"elu_plus_one": d, "identity": d, "dpfp": 2 * nu * d, "favor_plus": 2 * m}
    if name not in dims:
        raise ValueError(f"feature_map={name!r} is not one of {FEATURE_MAPS}")
    return dims[name]


def apply_feature_map(
    name: str, x: Float[Tensor, "*batch d"], nu: int = 1, projection: Tensor | None = None
) -> Float[Tensor, "*batch d_phi"]:
    """phi(x) for feature map `name` (favor_plus needs `projection`, dpfp uses `nu`)."""
    if name == "elu_plus_one":
        return elu_plus_one(x)
    if name == "identity":
        return identity(x)
    if name == "dpfp":
        return dpfp(x, nu)
    if name == "favor_plus":
        if projection is None:
            raise ValueError("feature_map='favor_plus' needs a projection [m, d] (orthogonal_random_features)")
        return favor_plus(x, projection)
    raise ValueError(f"feature_map={name!r} is not one of {FEATURE_MAPS}")
