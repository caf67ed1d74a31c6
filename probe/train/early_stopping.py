"""Early stopping: a callback that measures a quantity every N steps and asks the Trainer to stop once it reaches
a target or stops improving (as Schlag et al. 2021, section 6.1, stop their retrieval runs: at an eval loss of
0.001, or after 10 evaluations without improvement).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from probe.train.callbacks import Callback

if TYPE_CHECKING:
    from probe.train.trainer import Trainer


class EarlyStopping(Callback):
    """Every `every` optimizer steps (not before training, and at the last step), `value = measure(trainer)`;
    stop when `value <= target` (reason "target") or after `patience` measurements in a row without a new best
    (reason "plateau"). Lower is better; give `measure` the negated quantity to maximise one.

    `history` holds (step, value) of every measurement, `best` the lowest value, `reason` why it stopped (None
    while training ran to its step budget).
    """

    def __init__(self, measure: Callable[[Trainer], float], every: int, target: float | None = None,
                 patience: int | None = None) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} must be an integer >= 1")
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience={patience!r} must be an integer >= 1 or None")
        if target is None and patience is None:
            raise ValueError("EarlyStopping needs a target, a patience or both")
        self.measure, self.every, self.target, self.patience = measure, every, target, patience
        self.history: list[tuple[int, float]] = []
        self.best, self.since_best, self.reason = math.inf, 0, None

    def on_step(self, trainer: Trainer, step: int) -> None:
        if step == 0:
            return
        value = float(self.measure(trainer))
        if math.isnan(value):
            raise ValueError(f"EarlyStopping: the measured value at step {step} is NaN")
        self.history.append((step, value))
        self.best, self.since_best = (value, 0) if value < self.best else (self.best, self.since_best + 1)
        if self.target is not None and value <= self.target:
            self.reason = "target"
        elif self.patience is not None and self.since_best >= self.patience:
            self.reason = "plateau"
        if self.reason is not None:
            trainer.request_stop(f"early stopping: {self.reason} (value {value:.4g} at step {step})")
