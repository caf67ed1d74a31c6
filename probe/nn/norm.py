"""Normalisation layers with TransformerLens' hooks: LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich 2019);
BatchNorm lives in `probe.nn.batch_norm`.

`hook_scale` [batch pos 1] ([batch pos head 1] on TransformerLens' per-head inputs) is the divisor, `hook_normalized`
the normalised vector before the affine map, as in TransformerLens, so `ActivationCache.apply_ln_to_stack` works.
When neither hook is active (through TransformerLens or nnsight), the fused kernel runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from probe.hooked import HookPoint, is_hooked
from probe.nn.batch_norm import BatchNorm


class LayerNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos *head d_model"]) -> Float[Tensor, "batch pos *head d_model"]:
        if not (is_hooked(self.hook_scale) or is_hooked(self.hook_normalized)):
            return F.layer_norm(x, x.shape[-1:], self.w, self.b, self.eps)
        centered = x - x.mean(-1, keepdim=True)  # (torch.var_mean is ~15x slower on CPU)
        var = torch.linalg.vector_norm(centered, dim=-1, keepdim=True).square() / x.shape[-1]
        scale = self.hook_scale((var + self.eps).sqrt())
        return torch.addcmul(self.b, self.hook_normalized(centered / scale), self.w)


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: Float[Tensor, "batch pos *head d_model"]) -> Float[Tensor, "batch pos *head d_model"]:
        if not (is_hooked(self.hook_scale) or is_hooked(self.hook_normalized)):
            return F.rms_norm(x, x.shape[-1:], self.w, self.eps)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x * (1 / scale)) * self.w


def make_norm(cfg, kind: str | None = "cfg") -> nn.Module:
    """LN, RMS, BN (`probe.nn.batch_norm`), or the identity for None; `kind` defaults to `cfg.normalization_type`."""
    kind = cfg.normalization_type if kind == "cfg" else kind
    if kind == "LN":
        return LayerNorm(cfg.d_model, cfg.eps)
    if kind == "RMS":
        return RMSNorm(cfg.d_model, cfg.eps)
    if kind == "BN":
        return BatchNorm(cfg.d_model, cfg.eps)
    return nn.Identity()


def make_final_norm(cfg) -> nn.Module:
    """The norm before the unembedding / head: RMS when `cfg.final_rms`, the identity without a final norm."""
    if not cfg.has_final_norm:
        return nn.Identity()
    return make_norm(cfg, "RMS" if cfg.final_rms else cfg.normalization_type)


def apply_norm(norm: nn.Module, x: Tensor, key_padding_mask: Tensor | None) -> Tensor:
    """`norm(x)`; BatchNorm also gets the padding mask, which keeps padded positions out of its statistics."""
    if getattr(norm, "takes_padding_mask", False):
        return norm(x, key_padding_mask)
    return norm(x)
