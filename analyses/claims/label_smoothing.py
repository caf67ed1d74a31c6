"""Label smoothing 0.1 (001 §17.3; Vaswani et al. 2017 §5.4; Müller, Kornblith & Hinton 2019).

The seed lists label smoothing 0.1 among the Transformer's training settings. The 2017 paper says it "hurts
perplexity, as the model learns to be more unsure, but improves accuracy"; Müller et al. show it calibrates a
network's confidence (a lower expected calibration error). Both are about models that would otherwise grow
over-confident, so the study runs two regimes: a small training set (many epochs; the unsmoothed model overfits)
and the full training text (a few epochs).

A character-level decoder language model, trained with label smoothing 0 and 0.1 at the same size, steps and
learning rate; on held-out sentences: the (unsmoothed) negative log-likelihood, next-character accuracy, and the
expected calibration error of the top-1 confidence (15 equal-width bins, `probe.ops.calibration`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analyses.claims._charlm import LMConfig, char_lm, evaluate, lm_model
from analyses.claims._kit import recipe
from analyses.claims._plot import save
from probe import Trainer
from probe.ops.calibration import reliability
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main, paired

SOURCE = "001 §17.3; Vaswani et al. 2017 §5.4; Müller et al. 2019"
REGIMES = ("small_data", "full_data")
WHAT = {"ece": ("calibrates: lower expected calibration error", "ECE(0) - ECE(0.1)"),
        "nll": ("hurts perplexity: higher held-out NLL", "NLL(0.1) - NLL(0) (nats)"),
        "accuracy": ("improves accuracy", "accuracy(0.1) - accuracy(0)")}
CLAIMS = tuple(
    Claim(f"{metric}_{regime}", f"Label smoothing 0.1 {WHAT[metric][0]} ({regime.replace('_', ' ')})", SOURCE,
          f"held-out {WHAT[metric][1]}, {regime.replace('_', ' ')}", ">", 0.0)
    for regime in REGIMES for metric in WHAT)


@dataclass(frozen=True)
class Config(LMConfig):
    smoothing: float = 0.1
    small_windows: int = 96  # the small-data regime's training set; the full regime uses every window
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # five: the effects under test are small next to seed noise


def run_one(regime: str, smoothing: float, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    train, held_out, vocab = char_lm(cfg.n_ctx, cfg.small_windows if regime == "small_data" else None,
                                     cfg.n_sentences)
    model = lm_model(cfg, vocab, seed)
    tc = recipe(cfg, seed, label_smoothing=smoothing)
    Trainer(model, train, None, tc).fit()
    model.eval()
    with torch.no_grad():
        logits = model(held_out)[:, :-1].flatten(0, 1)
    count, confidence, accuracy = reliability(logits, held_out[:, 1:].flatten())
    bins = {f"bin{m:02d}_{k}": float(v[m]) for m in range(len(count))
            for k, v in (("n", count), ("conf", confidence), ("acc", accuracy))}
    return {**evaluate(model, held_out), "mean_confidence": float((count * confidence).sum() / count.sum()), **bins,
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [{"regime": r, "smoothing": s} for r in REGIMES for s in (0.0, cfg.smoothing)]
    table = grid(functools.partial(run_one, cfg=cfg), variants, cfg.seeds, desc="label_smoothing",
                 workers=cfg.workers)
    bins = [k for k in table.columns if k.startswith("bin")]  # reliability diagram data: for the figure only
    return Outcome(table.drop(columns=bins), {"CPU seconds, all runs": float(table["cpu_s"].sum())},
                   {"bins": table[["regime", "smoothing", "seed", "ece", *bins]]})


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    eps = float(table["smoothing"].max())
    if eps <= 0:
        raise ValueError("the table has no smoothed runs (smoothing > 0)")
    out = []
    for regime in REGIMES:
        off, on = {"regime": regime, "smoothing": 0.0}, {"regime": regime, "smoothing": eps}
        out.append(judge(c[f"ece_{regime}"], *paired(table, "ece", off, on)))
        out.append(judge(c[f"nll_{regime}"], *paired(table, "nll", on, off)))
        out.append(judge(c[f"accuracy_{regime}"], *paired(table, "accuracy", on, off)))
    return out


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.artifacts["bins"]
    n_bins = len([k for k in t.columns if k.endswith("_n")])
    fig, axes = plt.subplots(1, len(REGIMES), figsize=(9, 3.6), sharey=True)
    for ax, regime in zip(axes, REGIMES):
        for smoothing, style in zip(sorted(t["smoothing"].unique()), ("o-", "s--")):
            g = t[(t["regime"] == regime) & (t["smoothing"] == smoothing)]
            n = np.array([g[f"bin{m:02d}_n"].sum() for m in range(n_bins)])
            conf = np.array([(g[f"bin{m:02d}_conf"] * g[f"bin{m:02d}_n"]).sum() for m in range(n_bins)])
            acc = np.array([(g[f"bin{m:02d}_acc"] * g[f"bin{m:02d}_n"]).sum() for m in range(n_bins)])
            keep = n > 0
            ax.plot(conf[keep] / n[keep], acc[keep] / n[keep], style,
                    label=f"smoothing {smoothing:g} (ECE {g['ece'].mean():.3f})")
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
        ax.set(xlabel="confidence (top-1)", title=regime.replace("_", " "), xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("accuracy")
    fig.suptitle("Reliability on held-out text (pooled over seeds)")
    return save(fig, out / "reliability.png")


STUDY = Study(
    name="claims.label_smoothing",
    title="Label smoothing: calibration, perplexity and accuracy",
    claims=CLAIMS,
    config=Config(),
    quick=Config(steps=10, d_model=16, n_heads=2, small_windows=32, n_sentences=200, seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
