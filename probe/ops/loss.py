"""The one cross-entropy every probe model and the Trainer use (label smoothing: Szegedy et al. 2016, sec. 7).

Targets equal to `IGNORE_INDEX` (-100, PyTorch's and Hugging Face's convention) never count, and padded targets are
set to it: `mask_padding` for labels given per position, `next_token_labels` for language modelling. The mean is
over the targets that count, in fp32 whatever the logits' dtype.

Dimensions: b batch, p pos, c classes (vocabulary).
"""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float, Int, Shaped
from torch import Tensor

IGNORE_INDEX = -100


def mask_padding(labels: Int[Tensor, "..."], mask: Shaped[Tensor, "batch pos"] | None) -> Int[Tensor, "..."]:
    """`labels` with the positions where `mask` is 0 (padding) set to IGNORE_INDEX; per-sequence labels
    [batch] and a missing mask pass through."""
    if mask is None or labels.shape != mask.shape:
        return labels
    return labels.masked_fill(mask == 0, IGNORE_INDEX)


def next_token_labels(
    tokens: Int[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"] | None = None
) -> Int[Tensor, "batch pos_minus_1"]:
    """Next-token targets: tokens[:, 1:], IGNORE_INDEX where the target is padding (mask 0)."""
    return mask_padding(tokens[:, 1:], None if mask is None else mask[:, 1:])


def cross_entropy(
    logits: Float[Tensor, "... classes"], labels: Int[Tensor, "..."], label_smoothing: float = 0.0
) -> Float[Tensor, ""]:
    """Mean cross-entropy over the targets != IGNORE_INDEX, computed in fp32."""
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have shape {tuple(logits.shape[:-1])} (the logits' without classes), "
                         f"got {tuple(labels.shape)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing={label_smoothing!r} must be in [0, 1)")
    return F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE_INDEX,
                           label_smoothing=label_smoothing)
