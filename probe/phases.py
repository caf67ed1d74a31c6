"""Where a measured curve changes: the window of a transition, read off a recording (Olsson et al. 2022's "phase
change"; the phase boundaries of Nanda et al. 2023).

A curve recorded over training changes from its start value (the first record) to its end value (the mean of the
last `tail` fraction of records). Two readings of that change:

- `transition(steps, values)`: the steps at which the curve first gets `low`, one half and `high` of the way there
  (linear interpolation between records): when the change happens, and how long the bulk of it takes;
- `steepest_window(steps, values, width)`: the window of `width` steps in which the curve changes most in the
  direction of its total change, and the share of the total change that happens inside it. A change is abrupt when a
  short window holds most of it (a slow tail after a jump does not hide the jump); two curves change together when
  their steepest windows are close compared with their width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transition:
    """One change of a curve: start and end values, and the steps where it first covers `low`, 1/2 and `high` of
    the way (NaN when the curve never gets there or does not change)."""

    start: float
    end: float
    t_low: float
    t_mid: float
    t_high: float

    @property
    def change(self) -> float:
        return self.end - self.start

    @property
    def width(self) -> float:
        return self.t_high - self.t_low


def crossing(steps: np.ndarray, values: np.ndarray, level: float, rising: bool) -> float:
    """The first step at which `values` reaches `level` (from below when `rising`, from above otherwise), linearly
    interpolated between the two records around it; NaN if it never does."""
    hit = values >= level if rising else values <= level
    idx = np.flatnonzero(hit)
    if not len(idx):
        return math.nan
    i = int(idx[0])
    if i == 0:
        return float(steps[0])
    x0, x1, y0, y1 = float(steps[i - 1]), float(steps[i]), float(values[i - 1]), float(values[i])
    return x1 if y1 == y0 else x0 + (level - y0) * (x1 - x0) / (y1 - y0)


def transition(steps, values, low: float = 0.1, high: float = 0.9, tail: float = 0.1) -> Transition:
    """The transition of `values` (recorded at `steps`) from its first value to the mean of its last `tail` of
    records: the steps at which it first covers `low`, 1/2 and `high` of that change."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if steps.ndim != 1 or steps.shape != values.shape or len(steps) < 2:
        raise ValueError(f"steps and values must be 1-d of the same length >= 2; got {steps.shape}, {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values hold NaN or inf; pass the records where the curve was measured")
    if np.any(np.diff(steps) <= 0):
        raise ValueError("steps must increase")
    if not 0 < low < 0.5 < high < 1:
        raise ValueError(f"need 0 < low={low} < 0.5 < high={high} < 1")
    if not 0 < tail <= 0.5:
        raise ValueError(f"tail={tail} must be in (0, 0.5]")
    start = float(values[0])
    end = float(values[-max(1, round(tail * len(values))):].mean())
    if end == start:
        return Transition(start, end, math.nan, math.nan, math.nan)
    rising = end > start
    t = [crossing(steps, values, start + q * (end - start), rising) for q in (low, 0.5, high)]
    return Transition(start, end, *t)


@dataclass(frozen=True)
class Window:
    """The `width`-step window [t_start, t_end] where a curve changes most in the direction of its total change:
    its change there, the total change (end - start) and their ratio `share`."""

    t_start: float
    t_end: float
    change: float
    total: float

    @property
    def share(self) -> float:
        return self.change / self.total if self.total else math.nan

    @property
    def center(self) -> float:
        return (self.t_start + self.t_end) / 2


def steepest_window(steps, values, width: int | float, tail: float = 0.1) -> Window:
    """The window [t, t + width] (t at a record; the value at t + width interpolated linearly between records) over
    which `values` change most in the direction of their total change (first record -> mean of the last `tail`)."""
    t = transition(steps, values, tail=tail)  # validates the input
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if not 0 < width <= steps[-1] - steps[0]:
        raise ValueError(f"width={width} must be in (0, {steps[-1] - steps[0]}] (the recorded span)")
    starts = steps[steps + width <= steps[-1]]
    ends = np.interp(starts + width, steps, values)
    change = ends - values[: len(starts)]
    sign = 1.0 if t.change >= 0 else -1.0
    i = int(np.argmax(sign * change))
    return Window(float(starts[i]), float(starts[i] + width), float(change[i]), t.change)
