"""A planted sparse signal: the toy model of superposition (Elhage et al. 2022, "Toy Models of Superposition", sec. 2).

`n_features` features, each active independently with probability `p` and then of size Uniform[0, 1], are embedded
in `d` < `n_features` dimensions along fixed random unit directions: x = sum_i f_i w_i. The directions are known, so
an SAE trained on x can be checked for recovering them (a decoder row close to each w_i).
"""

from __future__ import annotations

import torch
from torch import Tensor

from probe.data.dataset import DictDataset


def sparse_features(n: int, n_features: int = 32, d: int = 16, p: float = 0.05, seed: int = 0
                    ) -> tuple[DictDataset, Tensor, Tensor]:
    """(DictDataset(acts [n d]), features [n n_features], directions [n_features d] (unit rows))."""
    for name, value in (("n", n), ("n_features", n_features), ("d", d)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    if not 0 < p <= 1:
        raise ValueError(f"p={p!r} must be a probability in (0, 1]")
    gen = torch.Generator().manual_seed(seed)
    active = torch.rand(n, n_features, generator=gen) < p
    features = torch.rand(n, n_features, generator=gen) * active
    directions = torch.randn(n_features, d, generator=gen)
    directions = directions / directions.norm(dim=1, keepdim=True)
    return DictDataset(acts=features @ directions), features, directions
