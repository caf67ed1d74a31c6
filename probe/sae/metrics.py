"""The measures SAELens reports for an SAE (its `evals.py`), taken on a model's own inputs through the SAE's site.

- `l0`: mean number of latents active (> 0) per row;
- `explained_variance`: 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the evaluation rows (the variance of
  the activation the reconstruction explains; 1 is perfect, 0 is no better than the mean row);
- `dead_fraction`: latents that fire on none of the `n_rows` evaluation rows (the window), as a fraction of d_sae;
- the cross-entropy loss recovered (SAELens' `ce_loss_score`) when the reconstruction is spliced into the forward
  pass through the hook: (L_ablated - L_sae) / (L_ablated - L_clean), where L_ablated replaces the activation by
  zeros ("zero", SAELens' choice) or by the mean row of the evaluation set ("mean"). 1: the SAE loses nothing;
  0: no better than the ablation. NaN when the ablation does not change the loss (there is nothing to recover).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from probe.sae.activations import ordered_batches
from probe.sae.sae import SparseAutoencoder
from probe.sae.site import Site
from probe.train.batches import to_device

ABLATIONS = ("zero", "mean")


def l0(latents: Float[Tensor, "row d_sae"]) -> float:
    return (latents > 0).sum(-1).float().mean().item()


def explained_variance(x: Float[Tensor, "row d_in"], x_hat: Float[Tensor, "row d_in"]) -> float:
    resid = (x - x_hat).pow(2).sum()
    total = (x - x.mean(0)).pow(2).sum()
    return (1 - resid / total).item()


def loss_recovered(clean: float, spliced: float, ablated: float) -> float:
    """(ablated - spliced) / (ablated - clean); NaN when ablated == clean."""
    return float("nan") if ablated == clean else (ablated - spliced) / (ablated - clean)


@torch.no_grad()
def evaluate(sae: SparseAutoencoder, site: Site, data: Any, n_batches: int | None = None, batch_size: int = 32,
             ablation: str = "zero") -> dict[str, Any]:
    """Every measure on `data` (the model's inputs, labels included for a classifier; all of it, or its first
    `n_batches` batches): l0, explained_variance, mse, dead_fraction over the n_rows evaluated, and ce_loss_clean,
    ce_loss_sae, ce_loss_ablated, ce_loss_recovered (each the model's loss per batch, averaged over batches weighted
    by their number of examples)."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation={ablation!r} is not one of {ABLATIONS}")
    model = site.model
    modes = model.training, sae.training
    model.eval()
    sae.eval()
    try:
        clean = []
        for batch in ordered_batches(data, batch_size, n_batches):
            batch = to_device(batch, model.device)
            loss, cache = model.run_with_cache(**batch, return_type="loss", names_filter=[site.hook])
            clean.append((batch, loss.item(), cache[site.hook]))
        x = torch.cat([site.rows(act) for _, _, act in clean]).to(sae.device)
        f = sae.encode(x)
        x_hat = sae.decode(f)
        mean_row = x.mean(0)

        def run(batch: dict[str, Tensor], replace) -> float:
            def hook(act: Tensor, hook: Any) -> Tensor:
                rows = site.rows(act).to(sae.device)
                return site.put(act, replace(rows).to(act.device))

            return model.run_with_hooks(**batch, return_type="loss", fwd_hooks=[(site.hook, hook)]).item()

        def ablate(rows: Tensor) -> Tensor:
            return torch.zeros_like(rows) if ablation == "zero" else mean_row.expand_as(rows)

        def reconstruct(rows: Tensor) -> Tensor:
            return sae(rows.float(), return_type="reconstruction")

        weights = torch.tensor([float(len(next(iter(b.values())))) for b, _, _ in clean])
        weights = weights / weights.sum()

        def mean(values: list[float]) -> float:
            return float((torch.tensor(values) * weights).sum())

        ce_clean = mean([loss for _, loss, _ in clean])
        ce_sae = mean([run(b, reconstruct) for b, _, _ in clean])
        ce_ablated = mean([run(b, ablate) for b, _, _ in clean])
    finally:
        model.train(modes[0])
        sae.train(modes[1])
    return {"l0": l0(f), "explained_variance": explained_variance(x, x_hat),
            "mse": (x - x_hat).pow(2).sum(-1).mean().item(), "dead_fraction": 1 - (f > 0).any(0).float().mean().item(),
            "n_rows": len(x), "ce_loss_clean": ce_clean, "ce_loss_sae": ce_sae, "ce_loss_ablated": ce_ablated,
            "ce_loss_recovered": loss_recovered(ce_clean, ce_sae, ce_ablated), "ablation": ablation}
