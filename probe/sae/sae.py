"""A sparse autoencoder over one hook point: the standard (L1) SAE and the TopK SAE.

Standard (Bricken et al. 2023, "Towards Monosemanticity"; the penalty of Anthropic's April 2024 update, as
SAELens' `StandardSAE` with `scale_sparsity_penalty_by_decoder_norm`):

    f     = ReLU((x - b_dec) W_enc + b_enc)                       latents [batch d_sae]
    x_hat = f W_dec + b_dec
    loss  = sum_i (x - x_hat)_i^2 + l1_coefficient * sum_j f_j ||W_dec[j]||_2      (mean over the batch)

Scaling the penalty by the decoder row norms makes it invariant to trading a latent's size against its decoder
row, so no norm constraint (and no step outside the Trainer) is needed.

TopK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", sec. 2.3 and A.2): f keeps the k largest
pre-activations (then ReLU), loss = MSE + aux_coefficient * AuxK, where AuxK reconstructs the residual x - x_hat from
the top `aux_k` pre-activations of the dead latents (scaled by min(n_dead / aux_k, 1), as SAELens does). The encoder
starts as the decoder's transpose (Gao et al. sec. 2.4); decoder rows start at norm `init_norm`.

A latent is dead once it has not fired on `dead_window` consecutive training rows (`tokens_since_fired`, a buffer
saved with the weights). The SAE is a probe checkpoint kind ("sae"): `probe.load(dir)` rebuilds it and the Trainer
trains it like any model: `forward(acts, return_type="loss")`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor, nn

from probe.config import ConfigBase, check_choice, check_positive
from probe.hooked import init_generator

ARCHITECTURES = ("standard", "topk")
SAE_RETURN_TYPES = ("loss", "reconstruction", "both")


@dataclass
class SAEConfig(ConfigBase):
    """`hook` and `head` name where the SAE reads (`probe.sae.Site`); they travel with the checkpoint."""

    kind: ClassVar[str] = "sae"

    d_in: int = 16
    d_sae: int = 64
    architecture: str = "standard"
    l1_coefficient: float = 1e-3  # standard only; depends on the scale of the activations
    k: int | None = None  # topk only: latents kept per row
    aux_k: int | None = None  # topk only: dead latents AuxK uses (default d_in // 2, Gao et al.)
    aux_coefficient: float = 1 / 32  # topk only (Gao et al. A.2)
    dead_window: int = 100_000  # training rows without firing after which a latent counts as dead
    init_norm: float = 0.1
    hook: str | None = None
    head: int | None = None
    seed: int | None = 0

    def __post_init__(self) -> None:
        self.check_types()
        check_positive("d_in", self.d_in)
        check_positive("d_sae", self.d_sae)
        check_positive("dead_window", self.dead_window)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if self.architecture == "topk":
            if self.k is None or not 1 <= self.k <= self.d_sae:
                raise ValueError(f"architecture='topk' needs k in [1, d_sae={self.d_sae}]; got k={self.k!r}")
            if self.aux_k is not None and not 1 <= self.aux_k <= self.d_sae:
                raise ValueError(f"aux_k={self.aux_k!r} must be in [1, d_sae={self.d_sae}] or None")
            if self.l1_coefficient != SAEConfig.l1_coefficient:
                raise ValueError("l1_coefficient applies to architecture='standard' only; a TopK SAE has no L1 term")
        else:
            for name in ("k", "aux_k"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}={getattr(self, name)!r} applies to architecture='topk' only")
        if self.l1_coefficient < 0 or self.aux_coefficient < 0:
            raise ValueError(f"l1_coefficient={self.l1_coefficient} and aux_coefficient={self.aux_coefficient} "
                             "must be >= 0")
        if not self.init_norm > 0:
            raise ValueError(f"init_norm={self.init_norm!r} must be > 0")
        if self.head is not None and self.head < 0:
            raise ValueError(f"head={self.head!r} must be a head index >= 0 or None (all heads)")


class SparseAutoencoder(nn.Module):
    """`sae(acts, return_type="loss"|"reconstruction"|"both")`; `encode`, `decode` and `W_enc`, `W_dec` as in
    SAELens (W_dec [d_sae d_in]: row j is latent j's direction)."""

    config_class = SAEConfig

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        if not isinstance(cfg, SAEConfig):
            raise TypeError(f"cfg must be a probe.sae.SAEConfig, got {type(cfg).__name__}")
        self.cfg = cfg = SAEConfig.from_dict(cfg.to_dict())  # the SAE's own copy
        W_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=init_generator(cfg))
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True) * cfg.init_norm
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))
        self.register_buffer("tokens_since_fired", torch.zeros(cfg.d_sae, dtype=torch.long))

    @property
    def device(self) -> torch.device:
        return self.W_dec.device

    def check_input(self, acts: Any) -> None:
        if not isinstance(acts, Tensor) or not acts.is_floating_point():
            raise TypeError(f"acts must be a float tensor [batch, d_in={self.cfg.d_in}], got "
                            f"{getattr(acts, 'dtype', type(acts).__name__)}")
        if acts.ndim != 2 or acts.shape[1] != self.cfg.d_in:
            raise ValueError(f"acts must have shape [batch, d_in={self.cfg.d_in}], got {tuple(acts.shape)}")

    def pre_activations(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def activation(self, pre: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_sae"]:
        if self.cfg.architecture == "standard":
            return torch.relu(pre)
        top = pre.topk(self.cfg.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        self.check_input(x)
        return self.activation(self.pre_activations(x.to(self.W_enc.dtype)))

    def decode(self, f: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
        return f @ self.W_dec + self.b_dec

    def dead(self) -> Tensor:
        """Bool [d_sae]: latents that have not fired on the last `dead_window` training rows."""
        return self.tokens_since_fired >= self.cfg.dead_window

    def forward(self, acts: Float[Tensor, "batch d_in"], return_type: str = "loss") -> Any:
        if return_type not in SAE_RETURN_TYPES:
            raise ValueError(f"return_type={return_type!r} is not one of {SAE_RETURN_TYPES} (an SAE has no logits; "
                             "train it without label_smoothing)")
        self.check_input(acts)
        x = acts.to(self.W_enc.dtype)
        pre = self.pre_activations(x)
        f = self.activation(pre)
        x_hat = self.decode(f)
        if return_type == "reconstruction":
            return x_hat
        loss = (x_hat - x).pow(2).sum(-1).mean()
        if self.cfg.architecture == "standard":
            loss = loss + self.cfg.l1_coefficient * (f * self.W_dec.norm(dim=1)).sum(-1).mean()
        elif self.training:
            loss = loss + self.cfg.aux_coefficient * self.aux_loss(x - x_hat.detach(), pre)
        if self.training:
            with torch.no_grad():
                fired = (f > 0).any(0)
                self.tokens_since_fired.add_(len(x)).masked_fill_(fired, 0)
        return loss if return_type == "loss" else (x_hat, loss)

    def aux_loss(self, residual: Float[Tensor, "batch d_in"], pre: Float[Tensor, "batch d_sae"]) -> Tensor:
        """AuxK (Gao et al. A.2): the residual reconstructed from the top `aux_k` pre-activations of dead latents."""
        dead = self.dead()
        n_dead = int(dead.sum())
        if n_dead == 0:
            return pre.new_zeros(())
        aux_k = self.cfg.aux_k or max(self.cfg.d_in // 2, 1)
        top = pre.masked_fill(~dead, float("-inf")).topk(min(aux_k, n_dead), dim=-1)
        f_aux = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
        scale = min(n_dead / aux_k, 1.0)
        return scale * (f_aux @ self.W_dec - residual).pow(2).sum(-1).mean()
