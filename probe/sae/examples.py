"""Top-activating examples per latent, the raw material of an SAE dashboard (Bricken et al. 2023; SAELens /
Neuronpedia feature dashboards).

`top_activations(sae, site, data)` runs the model over `data` in order and keeps, for every latent, the `k` rows with
the largest activation: a table (latent, rank, activation, example, position) where `example` indexes `data` and
`position` the row within it (token position; for a ViT 0 is the class token and p the patch p - 1; for a CNN the
feature-map cell y * width + x; always 0 for [batch d] hooks). `latent_summary` gives each latent's firing frequency
and largest activation. `token_context` cuts the window of tokens around a position; `vit_patch` maps a ViT
position to its patch's (row, column).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import Tensor

from probe.sae.activations import ordered_batches
from probe.sae.sae import SparseAutoencoder
from probe.sae.site import Site
from probe.train.batches import to_device


def _latent_passes(sae: SparseAutoencoder, site: Site, data: Any, batch_size: int):
    """(first example index, rows per example, latents [rows d_sae]) for every batch of `data`, in order."""
    was_training = sae.training
    sae.eval()
    try:
        start = 0
        for batch in ordered_batches(data, batch_size):
            act = site.read(to_device(batch, site.model.device))
            with torch.no_grad():
                f = sae.encode(site.rows(act).to(sae.device)).float().cpu()
            yield start, site.positions(act), f
            start += len(next(iter(batch.values())))
    finally:
        sae.train(was_training)


def top_activations(sae: SparseAutoencoder, site: Site, data: Any, k: int = 10, latents: list[int] | None = None,
                    batch_size: int = 32) -> pd.DataFrame:
    """The `k` largest positive activations of each latent (all, or `latents`) over `data`; a latent that fires on
    fewer rows has fewer. Rows sorted by latent, then rank (0 = largest)."""
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    chosen = torch.arange(sae.cfg.d_sae) if latents is None else torch.as_tensor(latents, dtype=torch.long)
    if chosen.numel() and not (0 <= int(chosen.min()) and int(chosen.max()) < sae.cfg.d_sae):
        raise ValueError(f"latents must be indices in [0, d_sae={sae.cfg.d_sae}); got {latents}")
    values = torch.full((len(chosen), 0), float("-inf"))
    rows = torch.zeros((len(chosen), 0), dtype=torch.long)
    positions = 1
    for start, positions, f in _latent_passes(sae, site, data, batch_size):
        ids = start * positions + torch.arange(len(f))
        values = torch.cat([values, f[:, chosen].T], 1)
        rows = torch.cat([rows, ids.expand(len(chosen), -1)], 1)
        top = values.topk(min(k, values.shape[1]), dim=1)
        values, rows = top.values, rows.gather(1, top.indices)
    records = []
    for i, latent in enumerate(chosen.tolist()):
        for rank, (value, row) in enumerate(zip(values[i].tolist(), rows[i].tolist())):
            if value > 0:
                records.append((latent, rank, value, row // positions, row % positions))
    return pd.DataFrame(records, columns=["latent", "rank", "activation", "example", "position"])


def latent_summary(sae: SparseAutoencoder, site: Site, data: Any, batch_size: int = 32) -> pd.DataFrame:
    """Per latent: the fraction of rows it fires on (`frequency`) and its largest activation over `data`."""
    fired = torch.zeros(sae.cfg.d_sae)
    largest = torch.zeros(sae.cfg.d_sae)
    n = 0
    for _, _, f in _latent_passes(sae, site, data, batch_size):
        fired += (f > 0).sum(0)
        largest = torch.maximum(largest, f.max(0).values)
        n += len(f)
    return pd.DataFrame({"latent": range(sae.cfg.d_sae), "frequency": (fired / n).tolist(),
                         "max_activation": largest.tolist()})


def token_context(tokens: Tensor, position: int, before: int = 8, after: int = 2) -> tuple[list[int], int]:
    """The tokens of one sequence from `position - before` to `position + after` (clipped to the sequence), and the
    index of `position` within that window."""
    if not 0 <= position < len(tokens):
        raise ValueError(f"position={position} is outside the sequence of {len(tokens)} tokens")
    lo = max(0, position - before)
    return tokens[lo : position + after + 1].tolist(), position - lo


def vit_patch(model: Any, position: int) -> tuple[int, int] | None:
    """A ViT token position as its patch's (row, column) on the patch grid; None for the class token (position 0)."""
    grid_h, grid_w = model.grid
    if not 0 <= position <= grid_h * grid_w:
        raise ValueError(f"position={position} is outside the class token and {grid_h}x{grid_w} patches")
    return None if position == 0 else divmod(position - 1, grid_w)
