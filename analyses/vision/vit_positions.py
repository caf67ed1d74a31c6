"""Position embeddings in a small ViT on scikit-learn's 8x8 digits: none vs learned 1-D vs fixed 2-D sinusoidal
(seed 000 §2.1; Dosovitskiy et al. 2021, appendix D.4).

The seed says that having a position encoding matters and its exact form matters little; Dosovitskiy et al. found a
large gap between no positional embedding and any of them, and little difference between ways of encoding
positions. The same ViT (same size, recipe, steps and seeds, trained through `probe.Trainer`) is trained with each
of the three schemes and scored on the fixed test split.

Measured per seed: the information gap, the lower accuracy of the two position schemes minus the accuracy without
positions; the form gap, the absolute difference between the two schemes' accuracies; and their difference (the
information gap must exceed the form gap). Also measured, as a control: accuracy on the test images with their
2x2 patches shuffled (one random permutation per image). Without positions the model sees a bag of patches, so
shuffling cannot change its predictions; the drop for the others shows how much they use the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import einops
import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from analyses.vision._common import n_params, predict, train, train_config, vit_digits
from probe.data.images import digits
from probe.models.vit import ViT
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main

SOURCE = "000 §2.1; Dosovitskiy et al. 2021 app. D.4"
POSITIONS = ("none", "learned", "sinusoidal_2d")
CLAIMS = (
    Claim("positions_matter", "A ViT with position embeddings (either form) classifies better than one without",
          SOURCE, "min(accuracy learned, accuracy 2-D sinusoidal) - accuracy without positions", ">", 0.05),
    Claim("form_matters_less", "Whether there is a position embedding matters more than its form", SOURCE,
          "[min(acc learned, acc 2-D sinusoidal) - acc none] - |acc learned - acc 2-D sinusoidal|", ">", 0.0),
)


@dataclass(frozen=True)
class Config:
    steps: int = 500
    workers: int = 2  # processes, one torch thread each
    seeds: tuple[int, ...] = (0, 1, 2)


def shuffle_patches(images: Float[Tensor, "batch channel height width"], patch_size: int,
                    seed: int) -> Float[Tensor, "batch channel height width"]:
    """Each image with its P x P patches permuted by its own random permutation."""
    gh = images.shape[2] // patch_size
    patches = einops.rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) c p1 p2", p1=patch_size, p2=patch_size)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.stack([torch.randperm(patches.shape[1], generator=gen) for _ in range(patches.shape[0])])
    patches = patches[torch.arange(patches.shape[0])[:, None], perm]
    return einops.rearrange(patches, "b (gh gw) c p1 p2 -> b c (gh p1) (gw p2)", gh=gh)


def train_and_score(positions: str, seed: int, steps: int, device: str | None = None) -> dict:
    """Train one ViT with `positions`; its accuracy on the test split, as is and with shuffled patches."""
    train_set, test = digits("train"), digits("test")
    model = ViT(vit_digits(seed, positional_embedding_type=positions))
    train(model, train_set, train_config(steps, seed, len(train_set), device=device))
    pred = predict(model, test.images).cpu()
    shuffled = predict(model, shuffle_patches(test.images, model.cfg.patch_size, seed=seed)).cpu()
    return {"n_params": n_params(model), "accuracy": (pred == test.labels).float().mean().item(),
            "shuffled_accuracy": (shuffled == test.labels).float().mean().item(),
            "changed_by_shuffle": (pred != shuffled).float().mean().item()}


def experiment(cfg: Config) -> Outcome:
    table = grid(partial(train_and_score, steps=cfg.steps), [{"positions": p} for p in POSITIONS], cfg.seeds,
                     desc="vit_positions", workers=cfg.workers)
    g = gaps(table)
    summary = {f"mean accuracy, {p}": table.loc[table["positions"] == p, "accuracy"].mean() for p in POSITIONS}
    summary.update({f"mean {k}": g[k].mean() for k in ("info_gap", "form_gap")})
    return Outcome(table, summary)


def gaps(table: pd.DataFrame) -> pd.DataFrame:
    """Per seed: info_gap = min(learned, sinusoidal_2d) - none, form_gap = |learned - sinusoidal_2d| (accuracy)."""
    out = []
    for seed, g in table.groupby("seed", sort=True):
        acc = g.set_index("positions")["accuracy"]
        missing = set(POSITIONS) - set(acc.index)
        if missing or len(acc) != len(POSITIONS):
            raise ValueError(f"seed {seed}: expected one row per position scheme {POSITIONS}, got {list(acc.index)}")
        info = min(acc["learned"], acc["sinusoidal_2d"]) - acc["none"]
        out.append({"seed": seed, "info_gap": info, "form_gap": abs(acc["learned"] - acc["sinusoidal_2d"])})
    return pd.DataFrame(out)


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    g = gaps(table)
    rows = [int(i) for i in table.index]
    return [judge(CLAIMS[0], g["info_gap"].to_numpy(), rows),
            judge(CLAIMS[1], (g["info_gap"] - g["form_gap"]).to_numpy(), rows)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(POSITIONS))
    for offset, (col, label) in zip((-0.18, 0.18), (("accuracy", "test"), ("shuffled_accuracy",
                                                                            "test, patches shuffled"))):
        values = [t.loc[t["positions"] == p, col].to_numpy() for p in POSITIONS]
        ax.bar(x + offset, [v.mean() for v in values], 0.36, label=label)
        for i, v in enumerate(values):
            ax.scatter([x[i] + offset] * len(v), v, color="k", s=8, zorder=3)
    ax.set_xticks(x, POSITIONS)
    ax.set(ylabel="accuracy (bars: mean; dots: seeds)", ylim=(0, 1.2),
           title=f"ViT position embeddings on digits, {t['seed'].nunique()} seed(s)")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.tight_layout()
    path = out / "accuracy_by_position.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


STUDY = Study(name="vision.vit_positions",
              title="ViT position embeddings: none vs learned 1-D vs 2-D sinusoidal (8x8 digits)",
              claims=CLAIMS, config=Config(), quick=Config(steps=4, workers=1, seeds=(0,)),
              experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
