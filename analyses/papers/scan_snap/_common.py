"""Shared by the Scan-and-Snap studies (Tian et al. 2023, arXiv 2305.16380; /work/shared/reference/scan_snap.md): the
Figure-4 setup, the attention measurements on the reparameterised model (c_{l|n}, its speed, the snap step) and on an
ordinary `probe.Transformer` (through `hook_pattern`), and a callback that measures the model every N steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import class_attention
from probe.models.scan_snap_config import ScanSnapConfig
from probe.train.callbacks import Callback

SOURCE = "Tian et al. 2023, Scan and Snap (NeurIPS 2023, arXiv 2305.16380)"
# Figure 4 (luckmatters README): 2 query tokens, 1 next token each, zero init, eta_Z = 1, eta_Y/eta_Z in {1, 10}
FIG4_DATA = ScanSnapConfig(num_last=2, num_next_per_last=1, num_common_per_last=0, init="zero")
FIG4_ETA_Z = 1.0
FIG4_RATIOS = (1.0, 10.0)
QK_PARAMS = r"\.attn\.(W_Q|W_K|b_Q|b_K)$"  # the attention logits' parameters: the paper's Z, trained at eta_Z


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def masses(c: Float[Tensor, "*runs F M"], data: ScanSnapData) -> dict[str, Tensor]:
    """Mass of c_{l|n} on each class's common and distinct tokens, mean over classes: {"common", "distinct"}."""
    return {which: (c * data.mask(which)).sum(-1).mean(-1) for which in ("common", "distinct")}


def speed(c: Float[Tensor, "steps *runs F M"]) -> Float[Tensor, "steps_1 *runs"]:
    """How fast the attention moves: |c(t+1) - c(t)|_1 per class, mean over classes."""
    return (c[1:] - c[:-1]).abs().sum(-1).mean(-1)


def snap_index(v: Float[Tensor, " steps"], frac: float) -> int:
    """Index of the first speed after the peak that falls below `frac` x the peak (len(v) if it never does)."""
    peak = int(v.argmax())
    below = (v[peak:] < frac * v[peak]).nonzero()
    return peak + int(below[0]) if len(below) else len(v)


def class_c(Z: Tensor, data: ScanSnapData) -> Tensor:
    """c_{l|n} from Z (any leading dims) for `data`'s classes."""
    return class_attention(Z, data.cond_prob(), data.query)


@torch.no_grad()
def token_attention(model: Any, tokens: Tensor, layer: int = 0, query_pos: int = -1) -> Tensor:
    """[batch, d_vocab]: the head-averaged attention of position `query_pos` in layer `layer`, summed per key token id
    (read through `blocks.{layer}.attn.hook_pattern`)."""
    name = f"blocks.{layer}.attn.hook_pattern"
    _, cache = model.run_with_cache(tokens, names_filter=name, return_type=None)
    pattern = cache[name][:, :, query_pos, :].mean(1)  # [batch, key_pos]
    return torch.zeros(tokens.shape[0], model.cfg.d_vocab, device=tokens.device).scatter_add_(1, tokens, pattern)


@torch.no_grad()
def pattern_entropy(model: Any, tokens: Tensor, layer: int) -> float:
    """Mean entropy (nats) of the attention rows of layer `layer` over batch, heads and query positions."""
    name = f"blocks.{layer}.attn.hook_pattern"
    _, cache = model.run_with_cache(tokens, names_filter=name, return_type=None)
    p = cache[name]
    return float(-(p * p.clamp_min(1e-30).log()).sum(-1).mean())


class Measure(Callback):
    """Calls `fn(model)` in eval mode before training, every `every` steps and at the last step; keeps what it
    returns in `values`, at `steps`."""

    def __init__(self, fn: Callable[[Any], Any], every: int) -> None:
        self.fn, self.every = fn, every
        self.steps: list[int] = []
        self.values: list[Any] = []

    def on_step(self, trainer: Any, step: int) -> None:
        model = trainer.model
        was_training = model.training
        model.eval()
        self.values.append(self.fn(model))
        model.train(was_training)
        self.steps.append(step)
