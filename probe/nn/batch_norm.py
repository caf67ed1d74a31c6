"""BatchNorm for token sequences (Ioffe & Szegedy 2015), the norm the seeds say Transformers avoid (001 §15, 003 #12).

Each of the d_model features is normalised by a mean and variance shared by the whole batch: in training mode the
statistics of the current batch's real tokens (positions where `key_padding_mask` is False are left out, so padding
never enters them), in evaluation mode the running averages collected in training (momentum 0.1, unbiased
variance, as `torch.nn.BatchNorm1d`). A token's output therefore depends on its batch-mates in training mode and not
in evaluation mode, which is what `analyses/claims/norms.py` measures. Statistics are per process (no SyncBN).

Hooks, as LayerNorm's where the meaning carries over: `hook_normalized` [batch pos d_model] is the normalised
vector before the affine map; `hook_scale` [1 1 d_model] is the per-feature divisor sqrt(var + eps) (batch or
running statistics). It is per feature, not per token, so TransformerLens' `apply_ln_to_stack` does not apply.
Unhooked and unmasked, the fused `F.batch_norm` runs; otherwise the explicit computation (its reference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from probe.hooked import HookPoint, is_hooked


def batch_statistics(
    x: Float[Tensor, "batch pos d_model"], mask: Bool[Tensor, "batch pos"] | None
) -> tuple[Float[Tensor, " d_model"], Float[Tensor, " d_model"], int]:
    """Per-feature mean, biased variance and token count over the real tokens (all tokens without a mask)."""
    flat = x.flatten(0, -2)
    if mask is not None:
        flat = flat[mask.flatten()]
    if flat.shape[0] < 2:
        raise ValueError(f"BatchNorm in training mode needs at least 2 real tokens per batch, got {flat.shape[0]} "
                         "(evaluation mode, model.eval(), normalises single tokens with its running statistics)")
    var, mean = torch.var_mean(flat, dim=0, correction=0)
    return mean, var, flat.shape[0]


class BatchNorm(nn.Module):
    takes_padding_mask = True  # `probe.nn.norm.apply_norm` passes the block's key padding mask

    def __init__(self, d_model: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.register_buffer("running_mean", torch.zeros(d_model))
        self.register_buffer("running_var", torch.ones(d_model))
        self.hook_scale = HookPoint()  # [1 1 d_model]
        self.hook_normalized = HookPoint()  # [batch pos d_model]

    def forward(
        self, x: Float[Tensor, "batch pos d_model"], key_padding_mask: Bool[Tensor, "batch pos"] | None = None
    ) -> Float[Tensor, "batch pos d_model"]:
        hooked = is_hooked(self.hook_scale) or is_hooked(self.hook_normalized)
        if not hooked and key_padding_mask is None:
            out = F.batch_norm(x.flatten(0, -2), self.running_mean, self.running_var, self.w, self.b,
                               self.training, self.momentum, self.eps)
            return out.view_as(x)
        if self.training:
            mean, var, n = batch_statistics(x, key_padding_mask)
            with torch.no_grad():
                unbiased = var * n / max(n - 1, 1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.hook_scale((var + self.eps).sqrt().view(1, 1, -1))
        return torch.addcmul(self.b, self.hook_normalized((x - mean) / scale), self.w)
