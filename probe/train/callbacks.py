"""Trainer callbacks: code that runs when training starts, every N optimizer steps (and once before the first step),
and when it ends. The recorder of training dynamics, `probe.train.recorder.Recorder`, is one.

A callback receives the running `Trainer` (`trainer.model`, `.device`, `.step`, `.dist`, `.evaluate()`, ...); this
module does not import the trainer (the trainer imports it).
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class: `on_start(trainer)` once when `fit` starts (after any resume), `on_step(trainer, step)` when
    `step % every == 0` (step 0 = before training) and at the last step, `on_end(trainer)` once after training."""

    every: int = 1

    def on_start(self, trainer: Any) -> None:
        """Does nothing by default."""

    def on_step(self, trainer: Any, step: int) -> None:
        """Does nothing by default."""

    def on_end(self, trainer: Any) -> None:
        """Does nothing by default."""
