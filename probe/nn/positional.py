"""Positional information: learned absolute (GPT-2), sinusoidal (Vaswani et al. 2017, sec. 3.5) and rotary
(Su et al. 2021, RoFormer; the rotate-half pairing of GPT-NeoX and Llama). "none" adds nothing.

Absolute encodings return [batch pos d_model] (TransformerLens' `hook_pos_embed` carries a batch dimension);
rotary acts on queries and keys inside attention.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn


def sinusoidal_table(n_pos: int, d_model: int, offset: int = 0, device=None) -> Float[Tensor, "pos d_model"]:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d))."""
    pos = torch.arange(offset, offset + n_pos, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_pos, d_model, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return table


class LearnedPosEmbed(nn.Module):
    def __init__(self, cfg, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model, generator=generator) * cfg.init_range)

    def forward(self, batch: int, n_pos: int, offset: int = 0) -> Float[Tensor, "batch pos d_model"]:
        return self.W_pos[offset : offset + n_pos].expand(batch, -1, -1)


class SinusoidalPosEmbed(nn.Module):
    """Fixed, so it extends to any length; the table for n_ctx is cached as a non-persistent buffer."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.d_model = cfg.d_model
        self.register_buffer("table", sinusoidal_table(cfg.n_ctx, cfg.d_model), persistent=False)

    @property
    def W_pos(self) -> Tensor:
        return self.table

    def forward(self, batch: int, n_pos: int, offset: int = 0) -> Float[Tensor, "batch pos d_model"]:
        if offset + n_pos <= self.table.shape[0]:
            table = self.table[offset : offset + n_pos]
        else:
            table = sinusoidal_table(n_pos, self.d_model, offset, self.table.device)
        return table.to(self.table.dtype).expand(batch, -1, -1)


class Rotary(nn.Module):
    """Rotates pairs (i, i + rotary_dim/2) of the first `rotary_dim` features by angle p * base^(-2i/rotary_dim)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.dim, self.base = cfg.rotary_dim, cfg.rotary_base

    def forward(
        self, x: Float[Tensor, "batch pos head d_head"], offset: int = 0
    ) -> Float[Tensor, "batch pos head d_head"]:
        # angles in fp32 whatever the model's dtype (a bf16 table of frequencies would lose the positions)
        inv_freq = self.base ** (-torch.arange(0, self.dim, 2, device=x.device, dtype=torch.float32) / self.dim)
        pos = torch.arange(offset, offset + x.shape[1], device=x.device, dtype=torch.float32)
        angles = torch.outer(pos, inv_freq)  # [pos, dim/2]
        cos = torch.cat([angles.cos(), angles.cos()], -1)[:, None, :].to(x.dtype)
        sin = torch.cat([angles.sin(), angles.sin()], -1)[:, None, :].to(x.dtype)
        x_rot, x_pass = x[..., : self.dim], x[..., self.dim :]
        half = self.dim // 2
        rotated = torch.cat([-x_rot[..., half:], x_rot[..., :half]], -1)
        return torch.cat([x_rot * cos + rotated * sin, x_pass], -1)


def make_pos_embed(cfg, generator: torch.Generator | None = None) -> nn.Module | None:
    """The absolute positional embedding of `cfg`, or None (rotary lives in attention; "none" adds nothing)."""
    if cfg.positional_embedding_type == "learned":
        return LearnedPosEmbed(cfg, generator)
    if cfg.positional_embedding_type == "sinusoidal":
        return SinusoidalPosEmbed(cfg)
    return None
