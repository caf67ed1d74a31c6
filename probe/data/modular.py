"""Modular addition, the grokking task: predict (a + b) mod p from the tokens [a, b, =].

Power et al. 2022 ("Grokking: generalization beyond overfitting on small algorithmic datasets"); the setting of
Nanda et al. 2023 ("Progress measures for grokking via mechanistic interpretability", section 3): p = 113, a
random 30% of the p^2 pairs for training, the rest for test, the answer read at the "=" position over p classes.

Tokens 0..p-1 are the numbers and token p is "="; `labels` score only the last position (-100 elsewhere), so a
decoder with `d_vocab = p + 1`, `d_vocab_out = p`, `n_ctx = 3` trains on it directly (`model_fields`). Pair
(a, b) has index a * p + b in `all_pairs`, the layout the Fourier progress measures (`probe.grokking`) expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from probe.data.dataset import DictDataset


def _check_p(p: int) -> None:
    if not isinstance(p, int) or isinstance(p, bool) or p < 3:
        raise ValueError(f"p={p!r} must be an integer >= 3")


def all_pairs(p: int) -> tuple[Int[Tensor, "pair 3"], Int[Tensor, "pair 3"]]:
    """Tokens [a, b, =] and labels [-100, -100, (a + b) mod p] for every pair, pair index a * p + b."""
    _check_p(p)
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], 1)
    labels = torch.full_like(tokens, -100)
    labels[:, 2] = (a + b) % p
    return tokens, labels


@dataclass(frozen=True)
class ModularAddition:
    """The task for one (p, train fraction, seed): every pair's tokens and labels, and which pairs are trained on.

    `train` / `test` are `DictDataset`s for `probe.Trainer` (full batch: `batch_size=len(task.train)`);
    `train_mask` [p * p] marks the training pairs in `all_pairs` order.
    """

    p: int
    frac_train: float
    seed: int
    tokens: Int[Tensor, "pair 3"]
    labels: Int[Tensor, "pair 3"]
    train_mask: Bool[Tensor, " pair"]

    @property
    def answers(self) -> Int[Tensor, " pair"]:
        return self.labels[:, 2]

    @property
    def train(self) -> DictDataset:
        return DictDataset(tokens=self.tokens[self.train_mask], labels=self.labels[self.train_mask])

    @property
    def test(self) -> DictDataset:
        return DictDataset(tokens=self.tokens[~self.train_mask], labels=self.labels[~self.train_mask])

    def model_fields(self) -> dict[str, Any]:
        """The TransformerConfig fields the task fixes."""
        return {"arch": "decoder", "d_vocab": self.p + 1, "d_vocab_out": self.p, "n_ctx": 3}


def modular_addition(p: int = 113, frac_train: float = 0.3, seed: int = 0) -> ModularAddition:
    """(a + b) mod p with a random `frac_train` of the p^2 pairs (rounded, at least one of each) for training;
    the split is a function of `seed` only."""
    _check_p(p)
    if not isinstance(frac_train, (int, float)) or not 0.0 < frac_train < 1.0:
        raise ValueError(f"frac_train={frac_train!r} must be a float in (0, 1)")
    n_train = round(frac_train * p * p)
    if not 0 < n_train < p * p:
        raise ValueError(f"frac_train={frac_train} of p*p={p * p} pairs leaves {n_train} for training; "
                         "both splits need at least one pair")
    tokens, labels = all_pairs(p)
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(p * p, dtype=torch.bool)
    mask[order[:n_train]] = True
    return ModularAddition(p, float(frac_train), seed, tokens, labels, mask)
