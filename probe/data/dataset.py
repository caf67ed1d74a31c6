"""`DictDataset`: named tensors sharing their first dimension, the dataset every task returns and the Trainer reads.

`ds[i]` is one example, `ds[idx_tensor]` a dict batch gathered in one indexing per tensor (no Python per example).
"""

from __future__ import annotations

import torch
from torch import Tensor


class DictDataset(torch.utils.data.Dataset):
    """Named tensors sharing their first dimension; `ds[i]` is one example, `ds[idx_tensor]` a batch."""

    def __init__(self, **tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("DictDataset needs at least one tensor")
        sizes = {k: len(v) for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"DictDataset tensors must share their first dimension; got sizes {sizes}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, idx: int | slice | Tensor) -> dict[str, Tensor]:
        return {k: v[idx] for k, v in self.tensors.items()}

    def split(self, n_eval: int) -> tuple[DictDataset, DictDataset]:
        """The last `n_eval` examples as an evaluation set, the rest for training."""
        if not 0 < n_eval < len(self):
            raise ValueError(f"n_eval={n_eval} must be in (0, {len(self)})")
        return DictDataset(**{k: v[:-n_eval] for k, v in self.tensors.items()}), DictDataset(
            **{k: v[-n_eval:] for k, v in self.tensors.items()}
        )
