"""Token embedding and unembedding in TransformerLens' layout (W_E [d_vocab, d_model], W_U [d_model, d_vocab_out])."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn


class Embed(nn.Module):
    def __init__(self, cfg, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.W_E = nn.Parameter(torch.randn(cfg.d_vocab, cfg.d_model, generator=generator) * cfg.init_range)
        self.scale = cfg.d_model**0.5 if cfg.scale_embed else 1.0

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        out = self.W_E[tokens]
        return out * self.scale if self.scale != 1.0 else out


class Unembed(nn.Module):
    """Logits = x W_U + b_U. With tied embeddings, W_U is W_E^T (a view, so gradients reach W_E)."""

    def __init__(self, cfg, embed: Embed | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.embed = [embed]  # a list, so the tied module is not registered twice
        if embed is None:
            self._W_U = nn.Parameter(torch.randn(cfg.d_model, cfg.d_vocab_out, generator=generator) * cfg.init_range)
        if getattr(cfg, "unembed_bias", True):
            self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out))
        else:
            self.register_buffer("b_U", torch.zeros(cfg.d_vocab_out), persistent=False)

    @property
    def W_U(self) -> Tensor:
        return self.embed[0].W_E.T if self.embed[0] is not None else self._W_U

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_vocab_out"]:
        return F.linear(x, self.W_U.T, self.b_U)
