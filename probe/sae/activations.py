"""Activations streamed from a model through a hook: the training data of an SAE.

`ActivationStream(site, data)` is an endless iterable of `{"acts": [batch_size d_in]}` batches, what `probe.Trainer`
reads (`Trainer(sae, ActivationStream(...))`). It runs the model on `data` (the model's own inputs: a `DictDataset`
of tokens, images + labels, ...; `model_batch_size` examples per forward), turns the hook's activation into rows
(`probe.sae.Site`), and mixes `buffer` forwards' rows in a shuffled buffer before cutting batches, so that a batch
does not hold the correlated positions of a few sequences (SAELens' activation store mixes the same way). Nothing is
stored beyond the buffer. The order is a function of `seed` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

from probe.sae.site import Site
from probe.train.batches import BatchStream, DictDataset, to_device


def ordered_batches(data: Any, batch_size: int, n_batches: int | None = None) -> Iterator[dict[str, Tensor]]:
    """The examples of a map-style dataset (a `DictDataset`) in order, `batch_size` at a time, the last batch
    possibly short; all of them, or the first `n_batches` batches. Example i of `data` is example i of the stream, so
    measurements can point back into `data`."""
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"data must be a map-style dataset (a DictDataset) so that examples can be looked up again; "
                        f"got {type(data).__name__}")
    if batch_size < 1 or (n_batches is not None and n_batches < 1):
        raise ValueError(f"batch_size={batch_size} and n_batches={n_batches} must be >= 1")
    stop = len(data) if n_batches is None else min(len(data), n_batches * batch_size)
    for start in range(0, stop, batch_size):
        idx = torch.arange(start, min(start + batch_size, stop))
        yield data[idx] if isinstance(data, DictDataset) else default_collate([data[int(i)] for i in idx])


class ActivationStream:
    """Endless `{"acts": Tensor[batch_size, d_in]}` batches of `site`'s rows on `data`."""

    def __init__(self, site: Site, data: Any, batch_size: int = 1024, model_batch_size: int = 32, buffer: int = 4,
                 seed: int = 0) -> None:
        for name, value in (("batch_size", batch_size), ("model_batch_size", model_batch_size), ("buffer", buffer)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        self.site, self.data = site, data
        self.batch_size, self.model_batch_size, self.buffer, self.seed = batch_size, model_batch_size, buffer, seed

    def model_batches(self) -> Iterator[dict[str, Tensor]]:
        return BatchStream(self.data, self.model_batch_size, seed=self.seed).iterate()

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed)
        device = self.site.model.device
        inputs = self.model_batches()
        pool = None
        while True:
            fresh = [self.site.rows(self.site.read(to_device(next(inputs), device))) for _ in range(self.buffer)]
            pool = torch.cat(fresh if pool is None else [pool, *fresh])
            pool = pool[torch.randperm(len(pool), generator=gen).to(pool.device)]
            n = (len(pool) // self.batch_size) * self.batch_size
            if n == 0:
                continue  # fewer rows than one batch so far: read more
            for start in range(0, n, self.batch_size):
                yield {"acts": pool[start : start + self.batch_size]}
            pool = pool[n:]
