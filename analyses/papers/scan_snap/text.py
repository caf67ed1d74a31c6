"""Scan and Snap on text (Tian et al. 2023, arXiv 2305.16380, Figures 7/10): decoders with one and three layers (two
heads, GELU MLP, learned positions, pre-LN) trained by `probe.Trainer` with SGD (momentum, gradient-norm clipping so
that no learning rate of the grid diverges) at several learning rates on `probe.data.text` (its offline corpus by
default: public-domain passages and generated sentences at character level, not wikitext). The attention entropy
of every layer (mean over heads, query positions and a fixed validation batch of `hook_pattern` rows) is recorded
over training. The paper: first-layer attention gets sparse and then freezes, and the validation attention entropy
falls as the learning rate grows. "Frozen" is measured as the drift (max - min) of the first layer's entropy over
the last quarter of its records, against its fall (start - min). A run whose loss or entropy turns NaN/inf counts
against the finite-runs claim and is left out of the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from analyses.papers.scan_snap._common import SOURCE
from analyses.papers.scan_snap._text import TextTraining, train_text
from probe.study import Claim, Outcome, Study, grid, judge, main, not_measured, per_seed

CLAIMS = (
    Claim("sparser", "First-layer attention becomes sparser over training, in every run", f"{SOURCE}, Figures 7/10",
          "smallest, over depths and learning rates, decrease of the first layer's attention entropy (nats) from "
          "the first record to the last", ">", 0.0),
    Claim("frozen", "First-layer attention then freezes, in every run", f"{SOURCE}, Figures 7/10",
          "largest, over depths and learning rates, drift of the first layer's entropy over the last quarter of "
          "training divided by its fall (start - minimum)", "<", 0.25),
    Claim("lr_sparser", "A larger learning rate gives a lower final validation attention entropy",
          f"{SOURCE}, Figures 7/10",
          "smallest, over depths and adjacent learning rates of the grid, final first-layer entropy at the smaller "
          "rate minus at the larger", ">", 0.0),
    Claim("finite", "Every run stays finite (no NaN/inf loss or entropy)", "a precondition of the other claims",
          "number of runs whose loss or entropy became NaN/inf", "<=", 0.0),
)
TAIL = 0.25


@dataclass(frozen=True)
class Config(TextTraining):
    depths: tuple[int, ...] = (1, 3)
    lrs: tuple[float, ...] = (0.05, 0.2, 0.5)


def curve_stats(entropy: list[float], tail: float = TAIL) -> dict:
    """start, min, final, decrease = start - final, fall = start - min, and the drift (max - min) over the last
    `tail` fraction of records."""
    last = entropy[-max(2, round(tail * len(entropy))):]
    return {"start": entropy[0], "min": min(entropy), "final": entropy[-1], "decrease": entropy[0] - entropy[-1],
            "fall": entropy[0] - min(entropy), "late_drift": max(last) - min(last)}


def run_one(n_layers: int, lr: float, seed: int, cfg: Config) -> list[dict]:
    rec = train_text(n_layers, lr, seed, cfg)
    diverged = rec["diverged_at"] is not None
    rows = []
    for layer, curve in enumerate(rec["entropy"]):
        stats = curve_stats(curve) if not diverged else dict.fromkeys(curve_stats([0.0]), math.nan)
        rows.append({"layer": layer, **stats, "diverged": diverged, "diverged_at": rec["diverged_at"],
                     "val_loss": rec["val_loss"], "curve": {"step": rec["step"], "entropy": curve}})
    return rows


def experiment(cfg: Config) -> Outcome:
    if len(cfg.lrs) < 2 or list(cfg.lrs) != sorted(set(cfg.lrs)):
        raise ValueError(f"lrs={cfg.lrs!r} must be at least two increasing learning rates")
    variants = [{"n_layers": n, "lr": lr} for n in cfg.depths for lr in cfg.lrs]
    table = grid(partial(run_one, cfg=cfg), variants, cfg.seeds, desc="text")
    return Outcome(table.drop(columns="curve"), artifacts={"curves": table})


def verdicts(table: pd.DataFrame) -> list:
    first = table[(table["layer"] == 0)]
    runs = first.assign(drift_over_fall=first["late_drift"] / first["fall"].clip(lower=1e-12))
    ok = runs[~runs["diverged"]]
    finite = judge(CLAIMS[3], *per_seed(runs, "diverged", "sum"), method="exact")
    if ok.empty:  # every run diverged
        return [not_measured(c, [int(i) for i in runs.index]) for c in CLAIMS[:3]] + [finite]
    lrs = sorted(runs["lr"].unique())
    wide = ok.pivot_table(index=["seed", "n_layers"], columns="lr", values="final").reindex(columns=lrs)
    steps = pd.concat([wide[a] - wide[b] for a, b in zip(lrs, lrs[1:])], axis=1).min(axis=1)  # NaN: diverged runs
    steps = steps.groupby("seed").min().dropna()
    rate = judge(CLAIMS[2], steps.sort_index().to_numpy(), [int(i) for i in ok.index]) if len(steps) else \
        not_measured(CLAIMS[2], [int(i) for i in runs.index])
    return [judge(CLAIMS[0], *per_seed(ok, "decrease", "min")),
            judge(CLAIMS[1], *per_seed(ok, "drift_over_fall", "max")), rate, finite]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.artifacts["curves"]
    t = t[t["seed"] == t["seed"].min()]
    depths = sorted(t["n_layers"].unique())
    fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 3.5), squeeze=False)
    for ax, depth in zip(axes[0], depths):
        for _, r in t[t["n_layers"] == depth].iterrows():
            ax.plot(r["curve"]["step"], r["curve"]["entropy"], label=f"lr {r['lr']:g}, layer {r['layer']}")
        ax.set(title=f"{depth}-layer decoder (first seed): attention entropy", xlabel="SGD step",
               ylabel="validation attention entropy (nats)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = out / "text_attention_entropy.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.text", title="Scan and Snap on text: attention entropy over training and learning rates",
    claims=CLAIMS, config=Config(), quick=Config(steps=3, batch=2, n_ctx=16, d_model=16, seeds=(0,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
