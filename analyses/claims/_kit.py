"""Helpers shared by the positions, embedding and training-recipe claims studies: the one training recipe they
use unless the claim is about the recipe, and their figures (bars of the mean over seeds with each seed as a dot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from probe import TrainConfig


def recipe(cfg: Any, seed: int, **changes: Any) -> TrainConfig:
    """AdamW at `cfg.lr` (betas 0.9/0.999, no weight decay), linear warmup over the first 10% of `cfg.steps`, then
    cosine decay; batches of `cfg.batch_size`; gradients clipped at norm 1 (the Trainer's default); one log line at
    the end. `changes` override any TrainConfig field."""
    fields = {"steps": cfg.steps, "batch_size": cfg.batch_size, "schedule": "cosine", "seed": seed,
              "progress": False, **changes}
    if "lr" not in fields:
        fields["lr"] = cfg.lr
    fields.setdefault("warmup_steps", fields["steps"] // 10)
    return TrainConfig(log_every=fields["steps"], **fields)


def seed_bars(ax: Any, x: Sequence[float], samples: Sequence[Sequence[float]], width: float = 0.8,
              **bar: Any) -> None:
    """At each x, a bar at the mean of its samples (one value per seed) and the samples as black dots."""
    ax.bar(x, [float(np.mean(s)) for s in samples], width, **bar)
    for xi, s in zip(x, samples):
        ax.scatter(np.full(len(s), xi), s, color="k", s=8, zorder=3)
