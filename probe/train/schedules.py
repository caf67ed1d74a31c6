"""Learning-rate schedules as multipliers of the base rate, functions of the optimizer step.

- "inverse_sqrt": Vaswani et al. 2017 ("Attention Is All You Need", eq. 3), normalised so the peak multiplier is 1
  at `warmup` steps: min(step / warmup, sqrt(warmup / step)).
- "linear": linear warmup, then linear decay to `min_ratio` at `total` steps (BERT, Devlin et al. 2019).
- "cosine": linear warmup, then half-cosine decay to `min_ratio` (Loshchilov & Hutter 2017, without restarts).
- "constant": linear warmup (if any), then 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

SCHEDULES = ("constant", "inverse_sqrt", "linear", "cosine")


def make_schedule(name: str, total: int, warmup: int = 0, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Multiplier for the lr at optimizer step `step` (0-based: the first update uses step 0)."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule={name!r} is not one of {SCHEDULES}")
    if warmup < 0 or total < 1:
        raise ValueError(f"need warmup >= 0 and total >= 1 (got warmup={warmup}, total={total})")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio={min_ratio} must be in [0, 1]")
    if name == "inverse_sqrt" and warmup == 0:
        raise ValueError("schedule='inverse_sqrt' needs warmup_steps >= 1 (the 2017 paper used 4000)")

    def warm(step: int) -> float:
        return (step + 1) / warmup

    def fn(step: int) -> float:
        if step < warmup:
            return warm(step)
        if name == "constant":
            return 1.0
        if name == "inverse_sqrt":
            return math.sqrt(warmup / (step + 1))
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if name == "linear":
            return 1.0 - (1.0 - min_ratio) * progress
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn
