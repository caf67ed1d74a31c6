"""Small models and data shared by the training tests."""

from __future__ import annotations

from probe.config import TransformerConfig
from probe.data import synthetic
from probe.models.transformer import Transformer


def tiny_decoder(seed: int = 0, dropout: float = 0.0, **kw) -> Transformer:
    fields = synthetic.task_model_fields("induction", n_symbols=8, max_block=4, length=9)
    cfg = TransformerConfig(**{"d_model": 16, "n_layers": 1, "n_heads": 2, "d_mlp": 32, "seed": seed,
                               "dropout": dropout, **fields, **kw})
    return Transformer(cfg)


def induction_data(n: int = 64, seed: int = 0, targets: str = "all"):
    """Repeated blocks; targets="all" (next-token loss everywhere) keeps the number of scored tokens per example
    fixed, so micro-batch means average to the full batch's mean."""
    return synthetic.induction(n, n_symbols=8, max_block=4, length=9, targets=targets, seed=seed)
