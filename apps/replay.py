"""What the replay page makes of a recording's measures, whatever their names (probe.load_trajectory): scalars
become curves over steps, `*.hook_pattern` [batch, head, query, key] attention patterns, "head_scores.KIND"
[layer, head] head-score maps, other vectors [k] (a loss by position, a Fourier spectrum) a profile at the step and a
steps x k map, other matrices a heat-map at the step; a measure with more dimensions is sliced along its leading
ones. `weight_norms.*` (one norm per parameter) also give their total, sqrt(sum of squares)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PATTERN = "hook_pattern"
HEAD_SCORES = "head_scores."
WEIGHT_NORMS = "weight_norms."
TOTAL_NORM = "weight norm (total)"


@dataclass
class Measures:
    scalars: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    head_scores: list[str] = field(default_factory=list)
    vectors: list[str] = field(default_factory=list)
    matrices: list[str] = field(default_factory=list)  # 2-D, or more (sliced along leading dimensions)


def classify(shapes: Mapping[str, Sequence[int]]) -> Measures:
    """Sort measure names by the shape of one record."""
    out = Measures()
    for name, shape in shapes.items():
        nd = len(shape)
        if nd == 0:
            out.scalars.append(name)
        elif name.endswith(PATTERN) and nd == 4:
            out.patterns.append(name)
        elif name.startswith(HEAD_SCORES) and nd == 2:
            out.head_scores.append(name)
        elif nd == 1:
            out.vectors.append(name)
        else:
            out.matrices.append(name)
    if any(n.startswith(WEIGHT_NORMS) for n in out.scalars):
        out.scalars.append(TOTAL_NORM)
    return out


def default_curves(scalars: Sequence[str]) -> list[str]:
    """The curves shown first: losses, accuracies and the total weight norm, else the first few scalars."""
    keys = ("loss", "acc", TOTAL_NORM)
    chosen = [n for n in scalars if not n.startswith(WEIGHT_NORMS) and any(k in n for k in keys)]
    return chosen or [n for n in scalars if not n.startswith(WEIGHT_NORMS)][:3]


def total_norm(norms: Sequence[np.ndarray]) -> np.ndarray:
    """sqrt of the summed squares of per-parameter norms, per record: the norm of all weights together."""
    return np.sqrt(np.sum([np.asarray(n, dtype=float) ** 2 for n in norms], axis=0))


def nearest(steps: Sequence[int], step: int) -> int:
    """Index of the last recorded step <= `step` (the first record if none is)."""
    steps = np.asarray(steps)
    idx = int(np.searchsorted(steps, step, side="right")) - 1
    return max(idx, 0)


def pattern_inputs(hook: str) -> tuple[str, str]:
    """The probe-batch inputs a pattern's queries and keys index: ("tokens", "tokens"), ("src", "src") for an
    encoder, ("tgt", "tgt") for decoder self-attention, ("tgt", "src") for cross-attention."""
    if hook.startswith("encoder."):
        return "src", "src"
    if hook.startswith("decoder."):
        return ("tgt", "src") if ".cross_attn." in hook else ("tgt", "tgt")
    return "tokens", "tokens"
