"""Calibration of a classifier's confidence: reliability bins and the expected calibration error (ECE).

Naeini, Cooper & Hauskrecht 2015; Guo, Pleiss, Sun & Weinberger 2017 ("On Calibration of Modern Neural
Networks", eq. 3), the measure Müller, Kornblith & Hinton 2019 use to show that label smoothing calibrates. With
confidence c_i = max_k softmax(logits_i)_k and correct_i = [argmax_k logits_i = y_i], sort predictions into
`n_bins` equal-width bins B_m = {i : c_i in ((m-1)/M, m/M]} and

    ECE = sum_m |B_m| / n * | acc(B_m) - conf(B_m) |

`reliability` is vectorised (one scatter-add per statistic); `reliability_naive` loops over the bins, the reference
the tests compare it with.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def _confidence(logits: Tensor, labels: Tensor, n_bins: int) -> tuple[Tensor, Tensor]:
    if logits.ndim != 2:
        raise ValueError(f"logits must be [n, classes], got shape {tuple(logits.shape)}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must be [n] = [{logits.shape[0]}], got shape {tuple(labels.shape)}")
    if logits.shape[0] == 0:
        raise ValueError("calibration needs at least one prediction (got n=0)")
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r} must be an integer >= 1")
    probs = logits.detach().double().softmax(-1)
    confidence, predicted = probs.max(-1)
    return confidence, (predicted == labels).double()


def _bin_index(confidence: Tensor, n_bins: int) -> Tensor:
    """Bin m (0-based) holds confidences in (m / M, (m + 1) / M]."""
    return (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)


def reliability(
    logits: Float[Tensor, "n classes"], labels: Int[Tensor, " n"], n_bins: int = 15
) -> tuple[Float[Tensor, " bins"], Float[Tensor, " bins"], Float[Tensor, " bins"]]:
    """Per confidence bin: (count, mean confidence, accuracy); empty bins have confidence and accuracy 0."""
    confidence, correct = _confidence(logits, labels, n_bins)
    index = _bin_index(confidence, n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=confidence.device)
    count = zeros.index_add(0, index, torch.ones_like(confidence))
    denom = count.clamp_min(1.0)
    return count, zeros.index_add(0, index, confidence) / denom, zeros.index_add(0, index, correct) / denom


def reliability_naive(logits: Tensor, labels: Tensor, n_bins: int = 15) -> tuple[Tensor, Tensor, Tensor]:
    """`reliability` one bin at a time (the reference)."""
    confidence, correct = _confidence(logits, labels, n_bins)
    count, conf, acc = (torch.zeros(n_bins, dtype=torch.float64) for _ in range(3))
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        inside = (confidence > lo) & (confidence <= hi) if m else confidence <= hi
        if m == n_bins - 1:
            inside = confidence > lo
        count[m] = inside.sum()
        if count[m]:
            conf[m], acc[m] = confidence[inside].mean(), correct[inside].mean()
    return count, conf, acc


def expected_calibration_error(logits: Float[Tensor, "n classes"], labels: Int[Tensor, " n"],
                               n_bins: int = 15) -> float:
    """ECE of the predictions `logits` (unnormalised) against integer `labels`, with `n_bins` equal-width bins."""
    count, conf, acc = reliability(logits, labels, n_bins)
    return float((count / count.sum() * (acc - conf).abs()).sum())
