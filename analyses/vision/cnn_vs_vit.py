"""CNN vs ViT against the size of the training set, on scikit-learn's 8x8 digits (seed 000 §3; Dosovitskiy et al.
2021 §4.3 and §3.1 "Inductive bias").

The seed says a CNN does better than a ViT when data is scarce, because its inductive bias (locality, weights shared
across positions) matches images, while a ViT has to learn those properties from data. Dosovitskiy et al. say the
same and add that with enough data the bias stops mattering, so the gap closes. A residual CNN with batch norm and a
ViT of similar parameter counts are trained on stratified subsets of the training set, from a few images per class
to all of it, with the same recipe (`probe.Trainer`: AdamW, warm-up then cosine decay) and the same number of
optimizer steps at every size, so small subsets are revisited more often and no model is starved of updates. Both
are scored on the fixed test split.

Measured per seed: the gap, CNN accuracy minus ViT accuracy (the same seed draws the subset and initialises both
models), at every size. The claim that the gap closes as data grows is quantified two ways: the gap at the smallest
size minus the gap on the full training set, and the least-squares slope of the gap against log2 of the number of
training images (negative when the gap closes). The seed also says the CNN converges faster: quantified as the mean
training loss over the second tenth of the steps on the full training set, CNN minus ViT (negative when the CNN's
loss falls first; the first tenth is mostly warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from analyses.vision._common import (
    accuracy,
    cnn_digits,
    n_params,
    stratified_subset,
    train,
    train_config,
    vit_digits,
)
from probe.data.images import digits
from probe.models.cnn import CNN
from probe.models.vit import ViT
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main, paired

SEED = "000 §3"
PAPER = "Dosovitskiy et al. 2021 §4.3"
CLAIMS = (
    Claim("cnn_leads_small", "With little data the CNN classifies better than a ViT of similar size",
          f"{SEED}; {PAPER}", "CNN accuracy - ViT accuracy at the smallest training set", ">", 0.0),
    Claim("gap_closes", "The CNN's lead shrinks once all the training data is used", f"{SEED}; {PAPER}",
          "(CNN - ViT accuracy) at the smallest training set - (CNN - ViT accuracy) on the full training set", ">",
          0.0),
    Claim("gap_falls_with_data", "The CNN's lead falls as the training set grows", f"{SEED}; {PAPER}",
          "least-squares slope of (CNN - ViT accuracy) against log2(training images), over every size", "<", 0.0),
    Claim("cnn_converges_faster", "The CNN converges faster than the ViT", SEED,
          "mean training loss over the second tenth of the steps, every training image: CNN - ViT", "<", 0.0),
)
WINDOWS = 10  # the training loss is logged as its mean over each tenth of the steps
MODELS = ("cnn", "vit")
NAMES = {"cnn": "CNN", "vit": "ViT"}


@dataclass(frozen=True)
class Config:
    fractions: tuple[float, ...] = (0.03, 0.06, 0.125, 0.25, 0.5, 1.0)  # of each class of the 1437 training images
    steps: int = 300
    workers: int = 2  # processes, one torch thread each
    seeds: tuple[int, ...] = (0, 1, 2)


def train_and_score(model: str, fraction: float, seed: int, steps: int, device: str | None = None) -> dict:
    """Train one model on the seed's stratified `fraction` of the training set; its test accuracy."""
    data = stratified_subset(digits("train"), fraction, seed)
    net = CNN(cnn_digits(seed)) if model == "cnn" else ViT(vit_digits(seed))
    if steps % WINDOWS:
        raise ValueError(f"steps={steps} must be a multiple of {WINDOWS} (the loss is logged per tenth of training)")
    trainer = train(net, data, train_config(steps, seed, len(data), device=device, log_every=steps // WINDOWS))
    losses = trainer.losses()
    return {"n_train": len(data), "n_params": n_params(net), "accuracy": accuracy(net, digits("test")),
            "early_loss": losses[1], "final_loss": losses[-1]}


def experiment(cfg: Config) -> Outcome:
    if not cfg.fractions or sorted(set(cfg.fractions)) != list(cfg.fractions):
        raise ValueError(f"fractions={cfg.fractions} must be distinct and increasing")
    variants = [{"model": m, "fraction": f} for f in cfg.fractions for m in MODELS]
    table = grid(partial(train_and_score, steps=cfg.steps), variants, cfg.seeds, desc="cnn_vs_vit",
                 workers=cfg.workers)
    gap = gaps(table)
    mean = gap.groupby("n_train")["gap"].mean()
    summary = {f"mean gap at {n} images": g for n, g in mean.items()}
    summary["sizes where the mean gap is > 0"] = f"{int((mean > 0).sum())} of {len(mean)}"
    summary.update({f"parameters, {NAMES[m]}": int(table.loc[table["model"] == m, "n_params"].iloc[0])
                    for m in MODELS})
    return Outcome(table, summary)


def gaps(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (seed, fraction): n_train, gap = CNN accuracy - ViT accuracy, and the rows it came from."""
    out = []
    for (seed, fraction), g in table.groupby(["seed", "fraction"], sort=True):
        by = g.set_index("model")
        if sorted(by.index) != sorted(MODELS):
            raise ValueError(f"seed {seed}, fraction {fraction}: expected one row per model {MODELS}, got "
                             f"{list(g['model'])}")
        out.append({"seed": seed, "fraction": fraction, "n_train": int(by.loc["cnn", "n_train"]),
                    "gap": by.loc["cnn", "accuracy"] - by.loc["vit", "accuracy"], "rows": list(g.index)})
    return pd.DataFrame(out)


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    g = gaps(table)
    rows = [int(i) for i in table.index]
    small, full = g["fraction"].min(), g["fraction"].max()
    by_seed = {s: d.sort_values("fraction") for s, d in g.groupby("seed")}
    at_small = [d.loc[d["fraction"] == small, "gap"].iloc[0] for d in by_seed.values()]
    closes = [d.loc[d["fraction"] == small, "gap"].iloc[0] - d.loc[d["fraction"] == full, "gap"].iloc[0]
              for d in by_seed.values()]
    slopes = [np.polyfit(np.log2(d["n_train"].to_numpy(float)), d["gap"].to_numpy(float), 1)[0]
              for d in by_seed.values()]
    small_rows = [i for r in g.loc[g["fraction"] == small, "rows"] for i in r]
    ends = [i for r in g.loc[g["fraction"].isin([small, full]), "rows"] for i in r]
    faster = paired(table, "early_loss", {"model": "cnn", "fraction": full}, {"model": "vit", "fraction": full})
    return [judge(CLAIMS[0], at_small, small_rows), judge(CLAIMS[1], closes, ends), judge(CLAIMS[2], slopes, rows),
            judge(CLAIMS[3], *faster)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for model, color in (("cnn", "tab:blue"), ("vit", "tab:orange")):
        g = t[t["model"] == model]
        s = g.groupby("n_train")["accuracy"].agg(["mean", "min", "max"])
        ax.errorbar(s.index, s["mean"], [s["mean"] - s["min"], s["max"] - s["mean"]], marker="o", capsize=3,
                    color=color, label=f"{NAMES[model]} ({int(g['n_params'].iloc[0]):,} parameters)")
    gap = gaps(t)
    for seed, d in gap.groupby("seed"):
        bx.plot(d["n_train"], d["gap"], marker=".", alpha=0.6, label=f"seed {seed}")
    bx.plot(*zip(*gap.groupby("n_train")["gap"].mean().items()), color="k", marker="o", label="mean")
    bx.axhline(0, color="grey", lw=0.8)
    sizes = sorted(t["n_train"].unique())
    for a, ylabel in ((ax, "test accuracy (mean, range over seeds)"), (bx, "CNN - ViT test accuracy")):
        a.set(xscale="log", xlabel="training images (log scale)", ylabel=ylabel)
        a.set_xticks(sizes, [str(n) for n in sizes])
        a.minorticks_off()
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    ax.set_title(f"digits 8x8, {t['seed'].nunique()} seed(s)")
    bx.set_title("the CNN's lead per seed")
    fig.tight_layout()
    path = out / "accuracy_vs_data.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


STUDY = Study(name="vision.cnn_vs_vit", title="CNN vs ViT against the size of the training set (8x8 digits)",
              claims=CLAIMS, config=Config(), quick=Config(fractions=(0.03, 1.0), steps=10, workers=1, seeds=(0,)),
              experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
