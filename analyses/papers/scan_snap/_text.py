"""Training decoders on text for the Scan-and-Snap text and JoMA studies (Tian et al. 2023, Figures 7/10; JoMA,
arXiv 2310.00535): a `probe.Transformer` trained by `probe.Trainer` with SGD (momentum, clipped gradients) on
`probe.data.text` at character level, with the attention entropy of every layer read through `hook_pattern` on a
fixed validation batch every N steps. A run whose loss or entropy turns NaN/inf is marked diverged, not dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from analyses.papers.scan_snap._common import Measure, pattern_entropy
from probe import Transformer, TransformerConfig
from probe.data.text import text_task
from probe.train import NonFiniteLossError, TrainConfig, Trainer


@lru_cache(maxsize=4)
def text_data(source: str, n_ctx: int):
    return text_task(source, "char", n_ctx=n_ctx)


@dataclass(frozen=True)
class TextTraining:
    """What the text studies share: SGD (momentum, gradient-norm clipping), the decoder's width and context, the
    corpus, the number of entropy records over training, and the seeds."""

    momentum: float = 0.9
    clip: float | None = 1.0
    steps: int = 600
    batch: int = 32
    n_ctx: int = 32
    d_model: int = 32
    records: int = 20
    source: str = "builtin"
    seeds: tuple[int, ...] = (0, 1, 2)


def train_text(n_layers: int, lr: float, seed: int, cfg: TextTraining, act_fn: str = "gelu") -> dict:
    """Train one decoder; return {"step": [...], "entropy": [layer][record], "val_loss", "diverged_at"} where
    diverged_at is the first step whose loss or recorded entropy is not finite (None if none)."""
    train, val, tok = text_data(cfg.source, cfg.n_ctx)
    model = Transformer(TransformerConfig(d_model=cfg.d_model, n_layers=n_layers, n_heads=2,
                                          d_vocab=tok.get_vocab_size(), n_ctx=cfg.n_ctx, act_fn=act_fn, seed=seed))
    val_tokens = val[: min(32, len(val))]["tokens"]

    def entropies(m) -> list[float]:
        tokens = val_tokens.to(next(m.parameters()).device)
        return [pattern_entropy(m, tokens, layer) for layer in range(n_layers)]

    every = max(1, cfg.steps // cfg.records)
    measure = Measure(entropies, every)
    train_cfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch, lr=lr, optimizer="sgd", momentum=cfg.momentum,
                            weight_decay=0.0, grad_clip=cfg.clip, seed=seed, log_every=every, progress=False)
    trainer = Trainer(model, train, None, train_cfg, callbacks=[measure])
    diverged_at = None
    try:
        trainer.fit()
    except NonFiniteLossError:
        diverged_at = next(r["step"] for r in trainer.history if r.get("event") == "non_finite_loss")
    for step, values in zip(measure.steps, measure.values):
        if diverged_at is None and not all(math.isfinite(v) for v in values):
            diverged_at = step
    with torch.no_grad():
        model.eval()
        val_loss = model(val_tokens.to(trainer.device), return_type="loss").item()
    return {"step": measure.steps, "entropy": [list(e) for e in zip(*measure.values)], "val_loss": val_loss,
            "diverged_at": diverged_at}
