"""Optimizers and parameter groups.

- "sgd": SGD with (Nesterov-free) momentum.
- "adam": Adam (Kingma & Ba 2015); the Transformer paper (Vaswani et al. 2017) used betas (0.9, 0.98), eps 1e-9.
- "adamw": decoupled weight decay (Loshchilov & Hutter 2019).
- "adafactor": factored second moments (Shazeer & Stern 2018), `torch.optim.Adafactor`.
- "lamb": layer-wise adaptive moments (You et al. 2020, "Large Batch Optimization for Deep Learning", Alg. 2),
  written here because torch has none: Adam direction + weight decay, scaled per tensor by ||w|| / ||update||.

Parameter groups: `lr_groups` maps a regular expression to a learning rate; a parameter joins the first pattern
that `re.search`es its name, the rest use the base rate. Biases and norm gains get no weight decay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import Tensor, nn

OPTIMIZERS = ("sgd", "adam", "adamw", "adafactor", "lamb")


class LAMB(torch.optim.Optimizer):
    """LAMB (You et al. 2020, Algorithm 2) with bias correction; trust ratio ||w|| / ||r + wd * w|| clipped to
    [0, 10] and set to 1 when either norm is 0."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, max_trust: float = 10.0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_trust=max_trust))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                update = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update = update + group["weight_decay"] * p
                w_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.sub_(update * (group["lr"] * trust.clamp(max=group["max_trust"])))
        return loss


def no_decay(name: str, param: Tensor) -> bool:
    return param.ndim < 2 or name.split(".")[-1].startswith("b_") or name.endswith("bias")


def param_groups(model: nn.Module, lr: float, weight_decay: float, lr_groups: dict[str, float] | None = None,
                 ) -> list[dict]:
    """Groups keyed by (lr pattern, decay or not); each group records its `name` and base lr `initial_lr`."""
    lr_groups = dict(lr_groups or {})
    patterns = {p: re.compile(p) for p in lr_groups}
    matched = dict.fromkeys(lr_groups, 0)
    groups: dict[tuple[str, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        pattern = next((p for p, rx in patterns.items() if rx.search(name)), "")
        if pattern:
            matched[pattern] += 1
        decay = not no_decay(name, param)
        key = (pattern, decay)
        if key not in groups:
            group_lr = lr_groups[pattern] if pattern else lr
            groups[key] = {"params": [], "names": [], "lr": group_lr, "initial_lr": group_lr,
                           "weight_decay": weight_decay if decay else 0.0, "name": f"{pattern or 'default'}"
                           f"{'' if decay else ':no_decay'}"}
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    unused = [p for p, n in matched.items() if n == 0]
    if unused:
        names = [n for n, _ in model.named_parameters()]
        raise ValueError(f"lr_groups patterns {unused} match no parameter; parameter names look like {names[:6]}")
    return list(groups.values())


def make_optimizer(name: str, groups: list[dict], lr: float, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, momentum: float = 0.9,
                   ) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} is not one of {OPTIMIZERS}")
    betas = tuple(betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "adafactor":
        return torch.optim.Adafactor(groups, lr=lr, weight_decay=weight_decay)
    return LAMB(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
