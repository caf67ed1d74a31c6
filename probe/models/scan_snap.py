"""The reparameterised 1-layer Transformer of Scan and Snap (Tian et al. 2023, arXiv 2305.16380), as `Model2` of
facebookresearch/luckmatters (ssl/real-dataset/decoder_only.py).

Z and Y are M x M matrices over the vocabulary. The last token x_T = m is the query; it attends to the context
positions t < T only: b_t = softmax_t(Z[m, x_t]). The bag c = sum_t b_t onehot(x_t) is L2-normalised (no residual)
and the logits are Y c. Hooks: `hook_attn_scores` and `hook_pattern` [batch, ctx] (the query's attention over the
context positions), `hook_bag` [batch, M] (the normalised bag) and `hook_logits` [batch, M].

`class_attention` gives the paper's c_{l|n} = P(l|n) exp(z_{m,l}) / sum_l' P(l'|n) exp(z_{m,l'}); `distinct_entropy`
its entropy restricted to each class's distinct tokens (Figure 6).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from probe.config import ScanSnapConfig
from probe.hooked import HookedModel, HookPoint, check_return_type, init_generator, output


def init_weights(
    d_vocab: int, init: str, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
) -> tuple[Float[Tensor, "M M"], Float[Tensor, "M M"]]:
    """(Z, Y) at "zero" init or nn.Linear's default U(-1/sqrt(M), 1/sqrt(M)) (drawn Y first, as K1 before K2)."""
    if init == "zero":
        return torch.zeros(d_vocab, d_vocab, device=device), torch.zeros(d_vocab, d_vocab, device=device)
    if init != "default":
        raise ValueError(f"init={init!r} must be 'zero' or 'default'")
    bound = d_vocab**-0.5
    Y = (torch.rand(d_vocab, d_vocab, generator=generator, device=device) * 2 - 1) * bound
    Z = (torch.rand(d_vocab, d_vocab, generator=generator, device=device) * 2 - 1) * bound
    return Z, Y


class ScanSnapModel(HookedModel):
    config_class = ScanSnapConfig

    def __init__(self, cfg: ScanSnapConfig) -> None:
        super().__init__(cfg)
        Z, Y = init_weights(cfg.d_vocab, cfg.init, init_generator(cfg))
        self.Z = nn.Parameter(Z)  # attention logits: Z[query, key token]
        self.Y = nn.Parameter(Y)  # decoder: logits = Y @ bag
        self.hook_attn_scores = HookPoint()
        self.hook_pattern = HookPoint()
        self.hook_bag = HookPoint()
        self.hook_logits = HookPoint()
        self.setup()

    def forward(
        self,
        tokens: Int[Tensor, "batch pos"],
        labels: Int[Tensor, " batch"] | None = None,
        return_type: str | None = "logits",
        label_smoothing: float = 0.0,
    ):
        check_return_type(return_type)
        if tokens.shape[1] < 2:
            raise ValueError(f"tokens has {tokens.shape[1]} positions; need context tokens followed by the query")
        context, query = tokens[:, :-1], tokens[:, -1]
        scores = self.hook_attn_scores(self.Z[query[:, None], context])  # [batch, ctx]
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        bag = torch.zeros(tokens.shape[0], self.cfg.d_vocab, dtype=pattern.dtype, device=pattern.device)
        bag = bag.scatter_add(1, context, pattern)
        if self.cfg.normalize:
            bag = bag / bag.norm(dim=-1, keepdim=True)
        logits = self.hook_logits(self.hook_bag(bag) @ self.Y.T)
        return output(logits, return_type, lambda: self.class_loss(logits, labels, label_smoothing))

    def param_groups(self, eta_z: float, eta_y: float) -> list[dict]:
        """Optimizer groups with the paper's separate learning rates for Z and Y."""
        return [{"params": [self.Z], "lr": eta_z}, {"params": [self.Y], "lr": eta_y}]


def class_attention(
    Z: Float[Tensor, "*runs M M"], cond_prob: Float[Tensor, "F M"], query: Int[Tensor, " F"]
) -> Float[Tensor, "*runs F M"]:
    """c_{l|n} = P(l|n) exp(z_{m,l}) / sum_l' P(l'|n) exp(z_{m,l'}), m = psi(n): the expected attention of class n."""
    logits = Z[..., query, :] + cond_prob.log()
    return logits.softmax(dim=-1)


def distinct_entropy(c: Float[Tensor, "*runs F M"], distinct: Bool[Tensor, "F M"]) -> Float[Tensor, "*runs"]:
    """Mean over classes of the entropy (nats) of c restricted to the class's distinct tokens, renormalised."""
    p = c * distinct
    p = p / p.sum(dim=-1, keepdim=True)
    ent = -(p * p.clamp_min(1e-30).log()).sum(dim=-1)
    return ent.mean(dim=-1)
