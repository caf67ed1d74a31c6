"""A model's parameter count does not set its inference time (seed 000 §2; Dosovitskiy et al. 2021, Table 1).

Seed 000 §2, on the Vision Transformer: "the number of a model's parameters and its inference time have no direct
relation". In a ViT the patch size hardly changes the parameter count (only the patch embedding and the position
table depend on it) but sets the sequence length: a 32x32 image is 256 patches of 2x2 or 16 patches of 8x8, and every
block's cost grows with the number of tokens (attention with its square). ViT-B/16 and ViT-B/32 are the paper's
example: about the same parameters, several times the compute.

Experiment. ViTs of the same width and depth on 32x32 RGB images with patch sizes 2, 4 and 8 (learned positions).
Their parameter counts are computed exactly; their inference time per image (eval mode, no gradients, a fixed
batch of random images) is measured in shuffled order after a warm-up, several times, keeping the median. The
verdict compares the time ratio between the smallest and the largest patch with their parameter ratio.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _plot
from probe.config import ViTConfig
from probe.models.vit import ViT
from probe.study import Claim, Outcome, Study, grid, judge, main
from probe.train import select_device

CLAIMS = (
    Claim("equal_params_different_time", "ViTs with (nearly) the same number of parameters but different patch sizes "
          "take very different times per image: the time ratio is more than twice the parameter ratio.",
          "000 §2; Dosovitskiy et al. 2021 Table 1",
          "(time per image, smallest patch / largest patch) / (parameters, smallest / largest patch)", ">", 2.0),
)


@dataclass
class Config:
    image_size: int = 32
    channels: int = 3
    patch_sizes: tuple[int, ...] = (2, 4, 8)
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    batch_size: int = 16
    repeats: int = 7
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    workers: int = 2


def vit(cfg: Config, patch: int, seed: int) -> ViT:
    return ViT(ViTConfig(image_size=cfg.image_size, patch_size=patch, n_channels=cfg.channels, d_model=cfg.d_model,
                         n_layers=cfg.n_layers, n_heads=cfg.n_heads, seed=seed)).eval()


@torch.no_grad()
def time_per_image(model: ViT, images: torch.Tensor) -> float:
    start = time.perf_counter()
    model(images)
    if images.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(images)


def measure(seed: int, cfg: Config) -> list[dict]:
    """Median time per image of each patch size (shuffled order, after one warm-up call each)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(cfg.batch_size, cfg.channels, cfg.image_size, cfg.image_size, generator=gen)
    device = select_device()
    nets = {p: vit(cfg, p, seed).to(device) for p in cfg.patch_sizes}
    images = images.to(device)
    for net in nets.values():
        time_per_image(net, images)
    times: dict[int, list[float]] = {p: [] for p in cfg.patch_sizes}
    order, rng = list(cfg.patch_sizes), random.Random(seed)
    for _ in range(cfg.repeats):
        rng.shuffle(order)
        for p in order:
            times[p].append(time_per_image(nets[p], images))
    return [{"patch": p, "tokens": nets[p].cfg.n_ctx, "params": sum(x.numel() for x in nets[p].parameters()),
             "seconds_per_image": sorted(v)[len(v) // 2]} for p, v in times.items()]


def experiment(cfg: Config) -> Outcome:
    table = grid(functools.partial(measure, cfg=cfg), [{}], cfg.seeds, desc="vit timings", workers=cfg.workers)
    summary = {}
    for p, g in table.groupby("patch"):
        summary[f"patch {p}: tokens, parameters"] = f"{int(g['tokens'].iloc[0])}, {int(g['params'].iloc[0])}"
        summary[f"patch {p}: ms per image (median over seeds)"] = 1e3 * float(g["seconds_per_image"].median())
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    small, large = table["patch"].min(), table["patch"].max()
    a = table[table["patch"] == small].set_index("seed")
    b = table[table["patch"] == large].set_index("seed")
    values = (a["seconds_per_image"] / b["seconds_per_image"]) / (a["params"] / b["params"])
    rows = [int(i) for i in table.index[table["patch"].isin([small, large])]]
    return [judge(CLAIMS[0], values.to_numpy(), rows)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    stats = t.groupby("patch").agg(params=("params", "first"), tokens=("tokens", "first"),
                                   ms=("seconds_per_image", lambda s: 1e3 * s.median()))
    base = stats.iloc[-1]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = range(len(stats))
    ax.bar([i - 0.2 for i in x], stats["params"] / base["params"], width=0.4, label="parameters")
    ax.bar([i + 0.2 for i in x], stats["ms"] / base["ms"], width=0.4, label="time per image")
    ax.set_xticks(list(x), [f"patch {p}\n{int(n)} tokens" for p, n in zip(stats.index, stats["tokens"])])
    ax.set(ylabel=f"relative to patch {stats.index[-1]}", title="ViT: parameters vs inference time")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return _plot.save(fig, out / "params_vs_time.png")


STUDY = Study(
    name="claims.params_vs_time",
    title="Parameter count does not set inference time (seed 000 §2)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(image_size=8, patch_sizes=(2, 4), d_model=16, n_layers=1, batch_size=2, repeats=1, seeds=(0,),
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
