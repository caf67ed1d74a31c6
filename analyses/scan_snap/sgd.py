"""Plain SGD with the Scan-and-Snap learning-rate split for an ordinary `probe.Transformer`: the attention's query and
key weights (W_Q, W_K, b_Q, b_K: the Z of the paper) at eta_Z, every other parameter (the decoder side, Y) at eta_Y.
Also the hook reader: the attention pattern of one query position, summed per key token id.
"""

from __future__ import annotations

import torch
from torch import Tensor

QK_NAMES = ("W_Q", "W_K", "b_Q", "b_K")


def param_groups(model: torch.nn.Module, eta_z: float, eta_y: float) -> list[dict]:
    qk = [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in QK_NAMES]
    rest = [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] not in QK_NAMES]
    if not qk:
        raise ValueError("model has no W_Q / W_K parameters to put at eta_Z")
    return [{"params": qk, "lr": eta_z}, {"params": rest, "lr": eta_y}]


def sgd(model: torch.nn.Module, eta_z: float, eta_y: float, momentum: float = 0.9) -> torch.optim.SGD:
    return torch.optim.SGD(param_groups(model, eta_z, eta_y), momentum=momentum)


@torch.no_grad()
def token_attention(model, tokens: Tensor, layer: int = 0, query_pos: int = -1) -> Tensor:
    """[batch, d_vocab]: the head-averaged attention of position `query_pos` of layer `layer`, summed per key token id
    (read through `blocks.{layer}.attn.hook_pattern`)."""
    name = f"blocks.{layer}.attn.hook_pattern"
    _, cache = model.run_with_cache(tokens, names_filter=name, return_type=None)
    pattern = cache[name][:, :, query_pos, :].mean(1)  # [batch, key_pos]
    return torch.zeros(tokens.shape[0], model.cfg.d_vocab, device=tokens.device).scatter_add_(1, tokens, pattern)


@torch.no_grad()
def pattern_entropy(model, tokens: Tensor, layer: int) -> float:
    """Mean entropy (nats) of the attention rows of layer `layer` over batch, heads and query positions."""
    name = f"blocks.{layer}.attn.hook_pattern"
    _, cache = model.run_with_cache(tokens, names_filter=name, return_type=None)
    p = cache[name]
    return float(-(p * p.clamp_min(1e-30).log()).sum(-1).mean())
