"""Batches for the Trainer: a resumable, rank-aware stream of dict batches.

`DictDataset` (`probe.data.dataset`, imported here too) holds equal-length tensors under names; indexing it with a
tensor of indices returns a dict batch in one gather, so feeding the model costs no Python per example.
`BatchStream` turns a dataset into an endless stream of global batches whose order is a pure function of
(seed, batch index): epoch e uses `randperm(n, generator=seed + e)`, so resuming at batch k needs no saved RNG
state, and in data-parallel runs each rank takes its contiguous slice of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

from probe.data.dataset import DictDataset

__all__ = ["BatchStream", "DictDataset", "batch_size_of", "count_tokens", "first_batches", "to_device"]


def batch_size_of(batch: Mapping[str, Tensor]) -> int:
    return len(next(iter(batch.values())))


def count_tokens(batch: Mapping[str, Tensor]) -> int:
    """Elements the model reads per batch: batch["tokens"], else "tgt" (plus "src"), else "images" per example."""
    if "tokens" in batch:
        return batch["tokens"].numel()
    if "tgt" in batch:
        return batch["tgt"].numel() + (batch["src"].numel() if "src" in batch else 0)
    if "images" in batch:
        return len(batch["images"])
    return batch_size_of(batch)


class BatchStream:
    """Endless global batches from a map-style dataset (deterministic order) or an iterable of dict batches.

    `batch(k)` (map-style only) is the k-th global batch of this rank; `__iter__` starts at `start`.
    For an iterable of ready batches (e.g. a DataLoader) the stream cycles through it and resumes by skipping.
    """

    def __init__(self, data: Any, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 shuffle: bool = True) -> None:
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes ({world})")
        self.data, self.batch_size, self.seed, self.rank, self.world, self.shuffle = (
            data, batch_size, seed, rank, world, shuffle)
        self.map_style = hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(
            data, torch.utils.data.DataLoader)
        if self.map_style and len(data) < batch_size:
            raise ValueError(f"dataset has {len(data)} examples, fewer than batch_size={batch_size}")
        self.per_epoch = len(data) // batch_size if self.map_style else None
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def indices(self, k: int) -> Tensor:
        epoch, offset = divmod(k, self.per_epoch)
        if self._epoch != epoch:  # one permutation per epoch, cached
            n = len(self.data)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
            self._epoch = epoch
        order = self._order
        idx = order[offset * self.batch_size : (offset + 1) * self.batch_size]
        per_rank = self.batch_size // self.world
        return idx[self.rank * per_rank : (self.rank + 1) * per_rank]

    def batch(self, k: int) -> dict[str, Tensor]:
        idx = self.indices(k)
        if isinstance(self.data, DictDataset):
            return self.data[idx]
        return default_collate([self.data[int(i)] for i in idx])

    def iterate(self, start: int = 0) -> Iterator[dict[str, Tensor]]:
        if self.map_style:
            k = start
            while True:
                yield self.batch(k)
                k += 1
        skipped = 0
        while True:
            produced = False
            for batch in self.data:
                produced = True
                if skipped < start:
                    skipped += 1
                    continue
                yield dict(batch)
            if not produced:
                raise ValueError("train_data yielded no batches")


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def first_batches(data: Iterable | Any, batch_size: int, n: int) -> list[dict[str, Tensor]]:
    """The first n batches in fixed (unshuffled) order: evaluation sets and probe batches."""
    stream = BatchStream(data, min(batch_size, len(data)) if hasattr(data, "__len__") and not isinstance(
        data, torch.utils.data.DataLoader) else batch_size, shuffle=False)
    out = []
    it = stream.iterate()
    count = (stream.per_epoch if stream.per_epoch is not None else n)
    for _ in range(min(n, count)):
        out.append(next(it))
    return out
