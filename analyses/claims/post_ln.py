"""Post-LN (the 2017 figure) vs Pre-LN (its code): gradients at initialisation and the need for warmup.

Seed 002 (its first paper, "On Layer Normalization in the Transformer Architecture", Xiong et al. 2020) says the
original figure puts LayerNorm between the residual blocks (Post-LN), the released code puts it at each sublayer's
input (Pre-LN), and Pre-LN works better because it solves a gradient problem. Xiong et al. show that at
initialisation the gradient of a Post-LN block's weights grows toward the output layers while Pre-LN's stays flat
across layers, and that Post-LN therefore needs a learning-rate warmup where Pre-LN trains without one.

Part (a), at initialisation: character-level language models of 6 and 12 blocks (Post-LN and Pre-LN, same seeds, same
large batch of held-out text, so the gradient is close to its expectation); one backward pass; the Frobenius norm of
the loss gradient over each block's FFN weights (W_in, W_out, the weights Xiong et al.'s analysis follows). Its
growth from the first to the last block is read from a log-linear fit over layers.

Part (b), training: 6-block models trained with Adam (betas 0.9, 0.98), no gradient clipping, at two learning rates
(a usual one and a ten times larger one), with a linear warmup over the first tenth of the steps or none, and a
constant rate otherwise; the same steps, batches and seeds for every variant. The measure is the held-out loss at the
end. A run whose loss becomes non-finite stops and is scored with the loss of a uniform prediction, log(vocab).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, grid, judge, main, paired

SOURCE = "002 (On Layer Normalization in the Transformer Architecture); Xiong et al. 2020"
GROWS, NEEDS = 1.5, 0.1


def _growth_claim(placement: str, depth: int) -> Claim:
    grows = placement == "post"
    return Claim(
        f"{placement}_ln_grad_{'grows' if grows else 'flat'}_{depth}",
        f"At initialisation, a {depth}-block {'Post' if grows else 'Pre'}-LN model's FFN weight gradient "
        + ("grows toward the output layers" if grows else "does not grow toward the output layers"),
        SOURCE, f"growth factor of the per-block FFN gradient norm from block 0 to block {depth - 1} "
        "(log-linear fit)", ">" if grows else "<", GROWS)


def _warmup_claim(placement: str, lr: float) -> Claim:
    post = placement == "post"
    return Claim(
        f"{placement}_ln_{'needs' if post else 'skips'}_warmup_lr{lr:g}",
        f"At Adam lr {lr:g}, {'Post' if post else 'Pre'}-LN " + ("needs warmup: without it the final loss is "
                                                             "clearly worse" if post else "trains without warmup"),
        SOURCE, f"held-out loss without warmup minus with warmup (nats), {'Post' if post else 'Pre'}-LN, lr {lr:g}",
        ">" if post else "<", NEEDS)


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (6, 12)  # part (a)
    train_layers: int = 6  # part (b)
    lrs: tuple[float, ...] = (1e-3, 1e-2)
    steps: int = 400
    warmup_fraction: float = 0.1
    d_model: int = 32
    n_heads: int = 4
    max_len: int = 32
    batch_size: int = 32
    n_train: int = 8192
    grad_batch: int = 256  # sequences in the batch whose gradient is measured at initialisation
    workers: int = 2


CONFIG = Config()
CLAIMS = tuple(_growth_claim(p, d) for p in ("post", "pre") for d in CONFIG.depths) + tuple(
    _warmup_claim(p, lr) for p in ("post", "pre") for lr in CONFIG.lrs)


def _model(placement: str, n_layers: int, d_model: int, n_heads: int, max_len: int, seed: int) -> Transformer:
    _, vocab = _arch.corpus()
    return Transformer(TransformerConfig(arch="decoder", n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                                         d_vocab=vocab, n_ctx=max_len, norm_placement=placement, seed=seed))


def init_gradients(placement: str, n_layers: int, d_model: int, n_heads: int, max_len: int, grad_batch: int,
                   seed: int) -> list[dict]:
    """One row per block: the FFN weight-gradient norm at initialisation."""
    cpu = time.process_time()
    model = _model(placement, n_layers, d_model, n_heads, max_len, seed)
    batch = _arch.batch_of(_arch.text_windows(grad_batch, max_len, max_len, 100 + seed, "eval"), grad_batch)
    norms = _arch.block_grad_norms(model, batch, ("mlp.W_in", "mlp.W_out"))
    cpu = time.process_time() - cpu
    return [{"layer": i, "grad_norm": g, "cpu_s": cpu / len(norms)} for i, g in enumerate(norms)]


def train_run(placement: str, lr: float, warmup: bool, n_layers: int, steps: int, warmup_fraction: float,
              d_model: int, n_heads: int, max_len: int, batch_size: int, n_train: int, seed: int) -> dict:
    cpu = time.process_time()
    model = _model(placement, n_layers, d_model, n_heads, max_len, seed)
    train = _arch.text_windows(n_train, max_len, max_len, 1)
    held_out = _arch.text_windows(512, max_len, max_len, 2, "eval")
    trainer, diverged = _arch.fit(model, train, None, steps, lr, seed, batch_size,
                                  warmup=max(1, round(warmup_fraction * steps)) if warmup else 0, grad_clip=None)
    loss = math.log(model.cfg.d_vocab) if diverged else _arch.loss_and_accuracy(model, held_out)[0]
    return {"final_loss": loss, "diverged": diverged,
            "steps_done": trainer.step, "cpu_s": time.process_time() - cpu}


def run(part: str, **kw) -> dict | list[dict]:
    """One job of the grid: part "init" (gradients at initialisation) or "train" (a training run)."""
    return init_gradients(**kw) if part == "init" else train_run(**kw)


def experiment(cfg: Config) -> Outcome:
    shape = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, max_len=cfg.max_len)
    init = [dict(part="init", placement=p, n_layers=d, grad_batch=cfg.grad_batch, **shape) for p in ("post", "pre")
            for d in cfg.depths]
    train = [dict(part="train", placement=p, lr=lr, warmup=w, n_layers=cfg.train_layers, steps=cfg.steps,
                  warmup_fraction=cfg.warmup_fraction, n_train=cfg.n_train, batch_size=cfg.batch_size, **shape)
             for p in ("post", "pre") for lr in cfg.lrs for w in (True, False)]
    table = grid(run, train + init, cfg.seeds, desc="post_ln", workers=cfg.workers)
    summary = {"runs that diverged": int(table["diverged"].fillna(False).sum()),
               "CPU seconds (all workers)": table["cpu_s"].sum()}
    return Outcome(table, summary)


def growth(table: pd.DataFrame, placement: str, depth: int) -> tuple[list[float], list[int]]:
    """Per seed: the log-linear growth factor of the gradient norm over the blocks of one model."""
    rows = table[(table["part"] == "init") & (table["placement"] == placement) & (table["n_layers"] == depth)]
    if rows.empty:
        raise ValueError(f"no init rows for placement={placement!r}, n_layers={depth}")
    values = [_arch.log_growth(g.sort_values("layer")["grad_norm"].tolist()) for _, g in rows.groupby("seed")]
    return values, [int(i) for i in rows.index]


def verdicts(table: pd.DataFrame) -> list:
    out = []
    for c in CLAIMS:
        placement = c.id.split("_")[0]
        if "_grad_" in c.id:
            values, rows = growth(table, placement, int(c.id.rsplit("_", 1)[1]))
        else:
            lr = float(c.id.rsplit("_lr", 1)[1])
            train = table[table["part"] == "train"]
            values, rows = paired(train, "final_loss", {"placement": placement, "lr": lr, "warmup": False},
                                  {"placement": placement, "lr": lr, "warmup": True})
        out.append(judge(c, values, rows))
    return out


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    init, train = table[table["part"] == "init"], table[table["part"] == "train"]
    depths = sorted(init["n_layers"].unique())
    fig, axes = plt.subplots(1, len(depths) + 1, figsize=(4.5 * (len(depths) + 1), 3.6))
    for ax, depth in zip(axes, depths):
        for placement, color in (("post", "C3"), ("pre", "C0")):
            rows = init[(init["placement"] == placement) & (init["n_layers"] == depth)]
            mean = rows.groupby("layer")["grad_norm"].mean()
            ax.plot(mean.index, mean.values, "o-", color=color, label=f"{placement}-LN")
        ax.set(title=f"{depth} blocks at initialisation", xlabel="block", ylabel="FFN gradient norm", yscale="log")
        ax.legend()
    ax = axes[-1]
    labels, means = [], []
    for (placement, lr, warm), rows in train.groupby(["placement", "lr", "warmup"]):
        labels.append(f"{placement} {lr:g}\n{'warmup' if warm else 'none'}")
        means.append(rows["final_loss"].mean())
    ax.bar(range(len(means)), means, color=["C3" if lab.startswith("post") else "C0" for lab in labels])
    ax.set_xticks(range(len(means)), labels, fontsize=7)
    ax.set(title="held-out loss after training", ylabel="nats")
    return _arch.save_figure(fig, out_dir, "post_ln")


STUDY = Study(
    name="claims.post_ln",
    title="Post-LN vs Pre-LN: gradients at initialisation and the need for warmup",
    claims=CLAIMS,
    config=CONFIG,
    quick=Config(seeds=(0,), depths=(6, 12), lrs=(1e-3, 1e-2), steps=4, d_model=16, n_heads=2, max_len=8,
                 batch_size=8, n_train=64, grad_batch=8, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
