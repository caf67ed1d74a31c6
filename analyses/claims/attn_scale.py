"""Scaling attention scores by 1/sqrt(d_k).

Seeds 001 §11.2 and 003 #4 (after Vaswani et al. 2017, sec. 3.2.1) say the dot products q.k grow with the key
dimension d_k; unscaled, they push the softmax into saturation, where its gradients vanish and training is unstable;
dividing by sqrt(d_k) prevents this. Hence: without scaling, the scores' standard deviation grows like sqrt(d_k) and
the softmax saturates (pattern entropy falls, gradients to W_Q and W_K shrink); with scaling it stays flat, and the
scaled model trains faster at large d_k.

At initialisation: 2-block decoders (4 heads of d_head 8 to 128, d_model fixed) on associative-recall sequences;
through `hook_attn_scores` and `hook_pattern` of the first block, the standard deviation of the scores a query may
use and each query's pattern entropy as a fraction of the uniform pattern's (log of its number of keys); one
backward pass gives the gradient norm over W_Q and W_K of both blocks. The growth of the score scale with d_head is
the slope of log std against log d_head (1/2 means "like sqrt(d_k)", 0 flat).
Training: the same models at the smallest and the largest d_head, scaled and unscaled, trained on associative recall
(Adam, the same steps, learning rate and batches); the measure is the first logged step whose training loss falls
below half of the loss of a uniform guess among the values (a run that never gets there counts at the end of its
budget).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, grid, judge, main, paired

SOURCE = "001 §11.2; 003 #4; Vaswani et al. 2017 sec. 3.2.1"
KEYS, VALUES, PAIRS = 8, 8, 4


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    d_heads: tuple[int, ...] = (8, 16, 32, 64, 128)
    d_model: int = 64
    n_heads: int = 4
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    log_every: int = 10
    workers: int = 2


CONFIG = Config()
SMALL, LARGE = min(CONFIG.d_heads), max(CONFIG.d_heads)
CLAIMS = (
    Claim("unscaled_std_grows_like_sqrt", "Unscaled, the score scale grows like sqrt(d_k)", SOURCE,
          "|slope of log score std vs log d_head - 1/2|, unscaled, at initialisation", "<", 0.1),
    Claim("scaled_std_flat", "Scaled by 1/sqrt(d_k), the score scale stays flat", SOURCE,
          "|slope of log score std vs log d_head|, scaled, at initialisation", "<", 0.1),
    Claim("unscaled_softmax_saturates", f"Unscaled, the softmax saturates at large d_k (d_head {LARGE})", SOURCE,
          f"normalised pattern entropy, unscaled - scaled, d_head {LARGE}, at initialisation", "<", 0.0),
    Claim("unscaled_qk_gradients_shrink", f"Unscaled, the gradients to W_Q and W_K shrink at large d_k (d_head "
          f"{LARGE})", SOURCE, f"W_Q, W_K gradient norm, unscaled / scaled, d_head {LARGE}, at initialisation",
          "<", 1.0),
    Claim("scaled_trains_faster_large", f"Scaled attention trains faster at large d_k (d_head {LARGE})", SOURCE,
          f"steps to half the uniform guess's loss, unscaled / scaled, d_head {LARGE}", ">", 1.0),
)


def _model(d_head: int, scaled: bool, d_model: int, n_heads: int, seed: int) -> Transformer:
    return Transformer(TransformerConfig(arch="decoder", n_layers=2, d_model=d_model, n_heads=n_heads, d_head=d_head,
                                         d_vocab=3 + KEYS + VALUES, n_ctx=2 * PAIRS + 1, use_attn_scale=scaled,
                                         seed=seed))


def init_stats(d_head: int, scaled: bool, d_model: int, n_heads: int, batch_size: int, seed: int) -> dict:
    """Score std, normalised pattern entropy (first block) and the W_Q/W_K gradient norm at initialisation."""
    cpu = time.process_time()
    model = _model(d_head, scaled, d_model, n_heads, seed)
    batch = _arch.batch_of(_arch.recall(batch_size, KEYS, VALUES, PAIRS, 100 + seed), batch_size)
    names = ("blocks.0.attn.hook_attn_scores", "blocks.0.attn.hook_pattern")
    loss, cache = model.run_with_cache(**batch, return_type="loss", names_filter=list(names))
    loss.backward()
    scores, pattern = cache[names[0]], cache[names[1]]
    allowed = torch.isfinite(scores)
    keys = allowed.sum(-1)  # [batch head query]: query t sees t + 1 keys
    entropy = (_arch.entropy(pattern)[keys > 1] / keys[keys > 1].log()).mean()
    grad = math.sqrt(sum(float(b.attn.W_Q.grad.square().sum() + b.attn.W_K.grad.square().sum())
                         for b in model.blocks))
    return {"score_std": float(scores[allowed].std()), "entropy": float(entropy), "qk_grad": grad,
            "cpu_s": time.process_time() - cpu}


def train_run(d_head: int, scaled: bool, d_model: int, n_heads: int, steps: int, lr: float, batch_size: int,
              n_train: int, log_every: int, seed: int) -> dict:
    cpu = time.process_time()
    model = _model(d_head, scaled, d_model, n_heads, seed)
    train = _arch.recall(n_train, KEYS, VALUES, PAIRS, 1)
    trainer, diverged = _arch.fit(model, train, None, steps, lr, seed, batch_size, warmup=max(1, steps // 20),
                                  schedule="cosine", log_every=log_every)
    threshold = 0.5 * math.log(VALUES)
    reached = _arch.first_step_below(_arch.logged_losses(trainer), threshold, steps)
    loss, acc = _arch.loss_and_accuracy(model, _arch.recall(512, KEYS, VALUES, PAIRS, 2))
    return {"steps_to_threshold": reached if not diverged else steps, "reached": reached < steps and not diverged,
            "final_loss": loss, "accuracy": acc, "diverged": diverged, "cpu_s": time.process_time() - cpu}


def run(part: str, **kw) -> dict:
    return init_stats(**kw) if part == "init" else train_run(**kw)


def experiment(cfg: Config) -> Outcome:
    shape = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, batch_size=cfg.batch_size)
    train = [dict(part="train", d_head=d, scaled=s, steps=cfg.steps, lr=cfg.lr, n_train=cfg.n_train,
                  log_every=cfg.log_every, **shape)
             for d in (max(cfg.d_heads), min(cfg.d_heads)) for s in (True, False)]
    init = [dict(part="init", d_head=d, scaled=s, **shape) for d in cfg.d_heads for s in (True, False)]
    table = grid(run, train + init, cfg.seeds, desc="attn_scale", workers=cfg.workers)
    summary = {"CPU seconds (all workers)": table["cpu_s"].sum()}
    return Outcome(table, summary)


def std_slope(table: pd.DataFrame, scaled: bool) -> tuple[list[float], list[int]]:
    """Per seed: the least-squares slope of log(score std) against log(d_head)."""
    rows = table[(table["part"] == "init") & (table["scaled"] == scaled)]
    if rows.empty:
        raise ValueError(f"no init rows with scaled={scaled}")
    slopes = [float(np.polyfit(np.log(g["d_head"].astype(float)), np.log(g["score_std"].astype(float)), 1)[0])
              for _, g in rows.groupby("seed")]
    return slopes, [int(i) for i in rows.index]


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    init, train = table[table["part"] == "init"], table[table["part"] == "train"]
    unscaled, rows_u = std_slope(table, False)
    scaled, rows_s = std_slope(table, True)
    big = {"d_head": int(init["d_head"].max())}
    return [
        judge(c["unscaled_std_grows_like_sqrt"], [abs(s - 0.5) for s in unscaled], rows_u),
        judge(c["scaled_std_flat"], [abs(s) for s in scaled], rows_s),
        judge(c["unscaled_softmax_saturates"], *paired(init, "entropy", {**big, "scaled": False},
                                                       {**big, "scaled": True})),
        judge(c["unscaled_qk_gradients_shrink"], *paired(init, "qk_grad", {**big, "scaled": False},
                                                         {**big, "scaled": True}, how="ratio")),
        judge(c["scaled_trains_faster_large"], *paired(train, "steps_to_threshold",
                                                       {"d_head": int(train["d_head"].max()), "scaled": False},
                                                       {"d_head": int(train["d_head"].max()), "scaled": True},
                                                       how="ratio")),
    ]


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    init, train = table[table["part"] == "init"], table[table["part"] == "train"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for scaled, color in ((False, "C3"), (True, "C0")):
        rows = init[init["scaled"] == scaled].groupby("d_head")
        label = "scaled" if scaled else "unscaled"
        for ax, col in zip(axes, ("score_std", "entropy", "qk_grad")):
            ax.plot(rows[col].mean(), "o-", color=color, label=label)
        steps = train[train["scaled"] == scaled].groupby("d_head")["steps_to_threshold"].mean()
        axes[3].plot(steps, "o-", color=color, label=label)
    titles = ("score std at init", "pattern entropy / log(keys) at init", "W_Q, W_K gradient norm at init",
              "steps to half the uniform loss")
    for ax, title in zip(axes, titles):
        ax.set(xscale="log", xlabel="d_head", title=title)
        ax.legend()
    axes[0].set_yscale("log")
    return _arch.save_figure(fig, out_dir, "attn_scale")


STUDY = Study(
    name="claims.attn_scale",
    title="Scaling attention scores by 1/sqrt(d_k): score scale, saturation, gradients and training speed",
    claims=CLAIMS,
    config=CONFIG,
    quick=Config(seeds=(0,), d_heads=(8, 32, 128), d_model=16, n_heads=2, steps=20, batch_size=8, n_train=64,
                 log_every=5, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
