"""Optimizers for Transformers: Adam, AdamW, Adafactor, LAMB (000's optimizer table and its "core principles").

The seed's table: the 2017 Transformer used Adam (betas 0.9/0.98, eps 1e-9) with warmup and inverse-square-root
decay; BERT/GPT use AdamW, whose decoupled weight decay (0.01) "improves generalisation and reduces overfitting";
T5 uses Adafactor, which "saves memory"; Megatron-style training uses LAMB, which "supports large-batch
parallelism". The testable forms: Adafactor keeps far less optimizer state than Adam; AdamW generalises at least as
well as Adam; LAMB loses less than AdamW when the batch grows and the number of examples seen stays fixed.

One character-level decoder language model. Every optimizer gets the same schedule (linear warmup over a quarter
of the steps, then the 2017 inverse-square-root decay), the same betas (0.9, 0.98) and eps 1e-9 where it has them,
and the same learning-rate grid; Adam and AdamW differ only in the decoupled weight decay, and LAMB gets the same
decay as AdamW. The learning rate of each (optimizer, batch size) is the grid value with the lowest mean validation
loss over seeds; the claims compare test losses at those rates (validation and test are disjoint halves of the
held-out text). The large batch is a multiple of the small one, trained for proportionally fewer steps.
Optimizer state is counted in bytes from `optimizer.state` after training.
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
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main, paired

SOURCE = "000 optimizer table and §4"
CLAIMS = (
    Claim("adafactor_small_state", "Adafactor keeps far less optimizer state than Adam", f"{SOURCE}; Shazeer & Stern "
          "2018", "optimizer state bytes, Adafactor / Adam", "<", 0.25),
    Claim("adamw_not_worse", "AdamW (decoupled weight decay) generalises at least as well as Adam: its test loss is "
          "not worse by more than 0.01 nats", f"{SOURCE}; Loshchilov & Hutter 2019",
          "test loss AdamW - Adam (nats), each at its best lr", "<", 0.01),
    Claim("adamw_better", "AdamW generalises better than Adam", f"{SOURCE}; Loshchilov & Hutter 2019",
          "test loss Adam - AdamW (nats), each at its best lr", ">", 0.0),
    Claim("lamb_holds_up", "LAMB holds up at large batch: growing the batch at a fixed number of examples costs it "
          "less than it costs AdamW", f"{SOURCE}; You et al. 2020",
          "loss increase small -> large batch, AdamW - LAMB (nats)", ">", 0.0),
)
OPTIMIZERS = ("adam", "adamw", "adafactor", "lamb")
LARGE_BATCH = ("adamw", "lamb")


@dataclass(frozen=True)
class Config(LMConfig):
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    steps: int = 400  # at the small batch; the large batch runs steps / batch_factor
    batch_factor: int = 8
    weight_decay: float = 0.01  # AdamW and LAMB, the table's value


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps per parameter (moments, factored statistics, step counters)."""
    return sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
               if isinstance(v, torch.Tensor))


def run_one(optimizer: str, batch: str, lr: float, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    train, held_out, vocab = char_lm(cfg.n_ctx, n_sentences=cfg.n_sentences)
    half = len(held_out) // 2
    factor = cfg.batch_factor if batch == "large" else 1
    steps = cfg.steps // factor
    model = lm_model(cfg, vocab, seed)
    decay = cfg.weight_decay if optimizer in ("adamw", "lamb") else 0.0
    tc = recipe(cfg, seed, steps=steps, batch_size=cfg.batch_size * factor, lr=lr, optimizer=optimizer,
                betas=(0.9, 0.98), eps=1e-9, weight_decay=decay, schedule="inverse_sqrt",
                warmup_steps=max(1, steps // 4))
    trainer = Trainer(model, train, None, tc)
    trainer.fit()
    val, test = evaluate(model, held_out[:half]), evaluate(model, held_out[half:])
    return {"val_nll": val["nll"], "test_nll": test["nll"], "train_loss": trainer.last_loss,
            "state_bytes": state_bytes(trainer.optimizer), "param_bytes": sum(p.numel() * p.element_size()
                                                                              for p in model.parameters()),
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [{"optimizer": o, "batch": "small", "lr": lr} for o in OPTIMIZERS for lr in cfg.lrs]
    variants += [{"optimizer": o, "batch": "large", "lr": lr} for o in LARGE_BATCH for lr in cfg.lrs]
    table = grid(functools.partial(run_one, cfg=cfg), variants, cfg.seeds, desc="optimizers", workers=cfg.workers)
    return Outcome(table, {"CPU seconds, all runs": float(table["cpu_s"].sum())})


def best(table: pd.DataFrame, optimizer: str, batch: str) -> pd.DataFrame:
    """The runs of `optimizer` at `batch` at its learning rate with the lowest mean validation loss (one per seed)."""
    runs = table[(table["optimizer"] == optimizer) & (table["batch"] == batch)]
    if runs.empty:
        raise ValueError(f"no runs of optimizer={optimizer!r} at batch={batch!r}")
    lr = runs.groupby("lr")["val_nll"].mean().idxmin()
    return runs[runs["lr"] == lr].sort_values("seed")


def diff(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> tuple[np.ndarray, list[int]]:
    """Per-seed metric(a) - metric(b) over the seeds both selections hold, and the table rows used (column `row`)."""
    a, b = a.set_index("seed"), b.set_index("seed")
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError("the two selections share no seed")
    values = a.loc[seeds, metric].to_numpy(float) - b.loc[seeds, metric].to_numpy(float)
    return values, [int(r) for r in list(a.loc[seeds, "row"]) + list(b.loc[seeds, "row"])]


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    t = table.assign(row=table.index)
    lr = float(t["lr"].min())  # state size does not depend on the rate: compare at one
    ratio, rows = paired(t, "state_bytes", {"optimizer": "adafactor", "batch": "small", "lr": lr},
                         {"optimizer": "adam", "batch": "small", "lr": lr}, how="ratio")
    out = [judge(c["adafactor_small_state"], ratio, rows, method="exact")]
    adamw, adam = best(t, "adamw", "small"), best(t, "adam", "small")
    out.append(judge(c["adamw_not_worse"], *diff(adamw, adam, "test_nll")))
    out.append(judge(c["adamw_better"], *diff(adam, adamw, "test_nll")))
    lamb_cost, lamb_rows = diff(best(t, "lamb", "large"), best(t, "lamb", "small"), "test_nll")
    adamw_cost, adamw_rows = diff(best(t, "adamw", "large"), best(t, "adamw", "small"), "test_nll")
    out.append(judge(c["lamb_holds_up"], adamw_cost - lamb_cost, adamw_rows + lamb_rows))
    return out


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for opt, batch in [(o, "small") for o in OPTIMIZERS] + [(o, "large") for o in LARGE_BATCH]:
        g = t[(t["optimizer"] == opt) & (t["batch"] == batch)].groupby("lr")["test_nll"].mean()
        axes[0].plot(g.index, g.values, "o-" if batch == "small" else "s--", color=f"C{OPTIMIZERS.index(opt)}",
                     label=f"{opt} ({batch} batch)")
    axes[0].set(xscale="log", xlabel="peak learning rate", ylabel="test loss (nats)", title="Loss by learning rate")
    axes[0].legend(fontsize=7)
    state = t[t["batch"] == "small"].groupby("optimizer")["state_bytes"].mean().reindex(OPTIMIZERS)
    axes[1].bar(range(len(OPTIMIZERS)), state.values / 1024, color=[f"C{i}" for i in range(len(OPTIMIZERS))])
    axes[1].axhline(float(t["param_bytes"].mean()) / 1024, color="gray", ls=":", label="parameters")
    axes[1].set(xticks=range(len(OPTIMIZERS)), xticklabels=OPTIMIZERS, ylabel="KiB", title="Optimizer state")
    axes[1].legend(fontsize=8)
    return save(fig, out / "optimizers.png")


STUDY = Study(
    name="claims.optimizers",
    title="Optimizers: Adam, AdamW, Adafactor and LAMB at equal steps",
    claims=CLAIMS,
    config=Config(),
    quick=Config(lrs=(3e-3,), steps=8, batch_factor=2, d_model=16, n_heads=2, n_sentences=200, seeds=(0,),
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
