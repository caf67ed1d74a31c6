"""Short causal depthwise convolution before the token mixer (Zoology, Arora et al. 2023; H3, Fu et al. 2023).

y_t = b + sum_{j=0}^{k-1} w[:, j] * x_{t-j} per channel (x_{<0} = 0), kernel k = cfg.short_conv. It lets a mixer bind
each token to its predecessors (key -> value in associative recall) without learning a previous-token head.
`cache` (generation): cache["conv"] holds the last k-1 inputs, so a one-token step sees its predecessors.

Dimensions: b batch, p pos, d d_model, k kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor, nn


class ShortConv(nn.Module):
    def __init__(self, cfg, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.kernel = cfg.short_conv
        past = torch.randn(cfg.d_model, self.kernel - 1, generator=generator) * self.kernel**-0.5
        self.W = nn.Parameter(torch.cat([torch.ones(cfg.d_model, 1), past], 1))  # W[:, j] weighs x_{t-j}; x_t's is 1
        self.b = nn.Parameter(torch.zeros(cfg.d_model))

    def forward(
        self, x: Float[Tensor, "batch pos d_model"], cache: dict | None = None
    ) -> Float[Tensor, "batch pos d_model"]:
        L, k = x.shape[1], self.kernel
        past = x.new_zeros(x.shape[0], k - 1, x.shape[2]) if cache is None or "conv" not in cache else cache["conv"]
        full = torch.cat([past, x], 1)  # [b, k-1+p, d]
        if cache is not None:
            cache["conv"] = full[:, full.shape[1] - (k - 1) :]
        weight = rearrange(self.W.flip(1), "d k -> d 1 k")  # conv1d correlates: tap k-1 meets x_t
        y = F.conv1d(rearrange(full, "b p d -> b d p"), weight, self.b, groups=x.shape[2])
        return rearrange(y, "b d p -> b p d")[:, -L:]


def short_conv_naive(
    x: Float[Tensor, "batch pos d_model"], W: Float[Tensor, "d_model kernel"], b: Float[Tensor, " d_model"]
) -> Float[Tensor, "batch pos d_model"]:
    """Reference: the loop over positions and taps."""
    out = []
    for t in range(x.shape[1]):
        y = b.expand(x.shape[0], -1)
        for j in range(W.shape[1]):
            if t - j >= 0:
                y = y + W[:, j] * x[:, t - j]
        out.append(y)
    return torch.stack(out, 1)
