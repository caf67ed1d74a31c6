"""Fixed 2-D sine-cosine position embeddings for a grid of image patches (MAE, He et al. 2022; Dosovitskiy et al.
2021 appendix D.4).

Half of d_model encodes the patch's row, the other half its column; each half is the 1-D sinusoid of Vaswani et al.
2017: sin(pos * w_k) then cos(pos * w_k), w_k = base^(-k / (d/4)) for k < d/4. Same layout as MAE's
`get_2d_sincos_pos_embed` (column half first, then row half). Any grid size works, so images of any size do too.
`naive_sincos_2d` is the per-entry loop it is tested against.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def _check(d_model: int) -> None:
    if d_model % 4:
        raise ValueError(f"2-D sinusoidal positions need d_model divisible by 4; got d_model={d_model}")


def sincos_1d(d: int, positions: Tensor, base: float = 10000.0) -> Float[Tensor, "n d"]:
    """[sin(p w_0) .. sin(p w_{d/2-1}), cos(p w_0) .. cos(p w_{d/2-1})] for each position p."""
    omega = base ** (-torch.arange(d // 2, dtype=torch.float64) / (d / 2))
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(
    d_model: int, grid_h: int, grid_w: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Float[Tensor, "patch d_model"]:
    """Position embedding of each patch in row-major order (token i*grid_w + j = row i, column j)."""
    _check(d_model)
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    emb_col = sincos_1d(d_model // 2, cols.flatten(), base)
    emb_row = sincos_1d(d_model // 2, rows.flatten(), base)
    return torch.cat([emb_col, emb_row], dim=1).to(dtype)


def naive_sincos_2d(d_model: int, grid_h: int, grid_w: int, base: float = 10000.0) -> Float[Tensor, "patch d_model"]:
    """Entry-by-entry reference for `sincos_2d`."""
    _check(d_model)
    quarter = d_model // 4
    out = torch.zeros(grid_h * grid_w, d_model, dtype=torch.float64)
    for i in range(grid_h):
        for j in range(grid_w):
            for k in range(quarter):
                w = base ** (-k / quarter)
                out[i * grid_w + j, k] = math.sin(j * w)
                out[i * grid_w + j, quarter + k] = math.cos(j * w)
                out[i * grid_w + j, 2 * quarter + k] = math.sin(i * w)
                out[i * grid_w + j, 3 * quarter + k] = math.cos(i * w)
    return out.to(torch.float32)
