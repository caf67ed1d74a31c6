"""Dropout: it reduces overfitting, and it is off at test time (003 #19; Srivastava et al. 2014; Vaswani et al.
2017 §5.4).

The seed says dropout randomly drops units during training to prevent overfitting, usually at 0.1 to 0.5, on the
fully connected layers and the attention outputs, and is not used at test time "to get deterministic outputs".
probe applies it to the embeddings and to every sublayer's output before the residual add (the paper's residual
dropout).

A setting where overfitting happens: a character-level decoder language model trained for many epochs on a small
slice of the generated grammar, then scored on held-out sentences, at dropout 0, 0.1 and 0.3 with the same size,
steps and learning rate. Overfitting is measured as the generalisation gap, held-out loss minus training loss (both
in eval mode). Determinism: the same input twice through the trained model in eval mode, and twice in train mode.
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
from analyses.claims._kit import recipe, seed_bars
from analyses.claims._plot import save
from probe import Trainer, Transformer
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main, paired

SOURCE = "003 #19; Srivastava et al. 2014"
CLAIMS = (
    Claim("narrows_gap_01", "Dropout 0.1 reduces overfitting: a smaller gap between held-out and training loss",
          SOURCE, "gap(p=0) - gap(p=0.1), gap = held-out - training loss (nats)", ">", 0.0),
    Claim("narrows_gap_03", "Dropout 0.3 reduces overfitting: a smaller gap between held-out and training loss",
          SOURCE, "gap(p=0) - gap(p=0.3), gap = held-out - training loss (nats)", ">", 0.0),
    Claim("lowers_test_loss", "Dropout 0.1 gives a lower held-out loss", SOURCE,
          "held-out loss p=0 - p=0.1 (nats)", ">", 0.0),
    Claim("eval_deterministic", "At test time dropout is off: the same input gives the same output", "003 #19",
          "max |f(x) - f(x)| over two eval-mode calls, per run with p > 0", "<=", 0.0),
    Claim("train_stochastic", "In training dropout is on: the same input gives different outputs", "003 #19",
          "max |f(x) - f(x)| over two train-mode calls, per run with p > 0", ">", 0.0),
)


@dataclass(frozen=True)
class Config(LMConfig):
    ps: tuple[float, ...] = (0.0, 0.1, 0.3)
    n_train_windows: int = 96  # a small training set: about 3k characters
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # five: the effects under test are small next to seed noise


def repeat_difference(model: Transformer, tokens: torch.Tensor, training: bool) -> float:
    """max |f(x) - f(x)| over two calls in train or eval mode."""
    was = model.training
    model.train(training)
    with torch.no_grad():
        diff = float((model(tokens) - model(tokens)).abs().max())
    model.train(was)
    return diff


def run_one(p: float, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    train, held_out, vocab = char_lm(cfg.n_ctx, cfg.n_train_windows, cfg.n_sentences)
    model = lm_model(cfg, vocab, seed, dropout=p)
    tc = recipe(cfg, seed)
    Trainer(model, train, None, tc).fit()
    fit, test = evaluate(model, train.tensors["tokens"]), evaluate(model, held_out)
    probe_batch = held_out[:16]
    return {"train_nll": fit["nll"], "test_nll": test["nll"], "gap": test["nll"] - fit["nll"],
            "eval_repeat_diff": repeat_difference(model, probe_batch, training=False),
            "train_repeat_diff": repeat_difference(model, probe_batch, training=True),
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    table = grid(functools.partial(run_one, cfg=cfg), [{"p": p} for p in cfg.ps], cfg.seeds, desc="dropout",
                 workers=cfg.workers)
    return Outcome(table, {"CPU seconds, all runs": float(table["cpu_s"].sum())})


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    out = [judge(c["narrows_gap_01"], *paired(table, "gap", {"p": 0.0}, {"p": 0.1})),
           judge(c["narrows_gap_03"], *paired(table, "gap", {"p": 0.0}, {"p": 0.3})),
           judge(c["lowers_test_loss"], *paired(table, "test_nll", {"p": 0.0}, {"p": 0.1}))]
    on = table[table["p"] > 0]
    if on.empty:
        raise ValueError("no run with dropout p > 0 to test determinism on")
    rows = [int(i) for i in on.index]  # exact: a deterministic check, judged on the range over runs
    out.append(judge(c["eval_deterministic"], on["eval_repeat_diff"].to_numpy(float), rows, method="exact"))
    out.append(judge(c["train_stochastic"], on["train_repeat_diff"].to_numpy(float), rows, method="exact"))
    return out


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    ps = sorted(t["p"].unique())
    fig, ax = plt.subplots(figsize=(5, 3.4))
    x = np.arange(len(ps))
    for j, (metric, label) in enumerate([("train_nll", "training"), ("test_nll", "held-out")]):
        seed_bars(ax, x + (j - 0.5) * 0.38, [t[t["p"] == p][metric] for p in ps], 0.38, label=label)
    ax.set(xticks=x, xticklabels=[f"p={p:g}" for p in ps], ylabel="loss (nats, eval mode)",
           title="Small-data language model: training vs held-out loss")
    ax.legend(fontsize=8)
    return save(fig, out / "dropout.png")


STUDY = Study(
    name="claims.dropout",
    title="Dropout: less overfitting, and deterministic at test time",
    claims=CLAIMS,
    config=Config(),
    quick=Config(steps=10, d_model=16, n_heads=2, n_train_windows=32, n_sentences=200, seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
