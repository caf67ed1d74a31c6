"""Several heads beat one at equal width and cost.

Seeds 001 §12 and 003 #1, #6 say multi-head attention lets each head attend to different positions or features, like
a CNN's channels: a single head's view is limited, several heads see several patterns at once, and splitting d_model
into h heads of d_model / h dimensions costs no more than one wide head.

A one-block decoder (with its FFN) must output f(x_0, x_{t-1}) at every position t >= 2, for a fixed random table f:
it needs the first token and the previous token at once, two different attention patterns. The same d_model is split
into 1, 2, 4 or 8 heads (d_head = d_model / h); everything else (FFN, steps, learning rate, batches, seeds) is equal.
Parameter count and matrix-multiply FLOPs of a forward pass (`torch.utils.flop_counter`, on the explicit attention
path so the score and value products count) are measured for each h; the measure of success is held-out accuracy.
Also recorded: the first logged step whose training loss is below half of a uniform guess's, and through
`hook_pattern` the attention queries put on the first and on the previous position (the head that puts the most on
each; with one head, the same head). A single head is not strictly unable to do the task: with unequal weights on the
two tokens its average still carries both, so the question is whether it learns to within the budget the others get.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main, paired

SOURCE = "001 §12; 003 #1, #6"


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    heads: tuple[int, ...] = (1, 2, 4, 8)
    d_model: int = 64
    n_symbols: int = 8
    length: int = 12
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    workers: int = 2


CONFIG = Config()
CLAIMS = (
    Claim("equal_cost", "Splitting d_model into h heads keeps parameters and FLOPs equal", "003 #6",
          "largest relative difference in parameter count or forward FLOPs from the one-head model, over h "
          "(per seed)",
          "<", 1e-9),
    Claim("one_head_fails", "One head fails the task that needs two patterns at once", SOURCE,
          "held-out accuracy with 1 head", "<", 0.9),
) + tuple(
    Claim(f"h{h}_beats_one", f"{h} heads succeed where one fails", SOURCE,
          f"held-out accuracy, {h} heads - 1 head", ">", 0.1) for h in CONFIG.heads if h > 1)


def _model(n_heads: int, d_model: int, n_symbols: int, length: int, seed: int) -> Transformer:
    return Transformer(TransformerConfig(arch="decoder", n_layers=1, d_model=d_model, n_heads=n_heads,
                                         d_vocab=n_symbols, n_ctx=length, seed=seed))


def cost(model: Transformer, tokens: torch.Tensor) -> tuple[int, int]:
    """(parameter count, matmul FLOPs of one forward pass with the attention scores materialised)."""
    handles = [b.attn.hook_pattern.add_hook(lambda t, hook: t) for b in model.blocks]
    with FlopCounterMode(display=False) as counter:
        model(tokens)
    for h in handles:
        h.hook.remove()
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops()


@torch.no_grad()
def first_and_previous(model: Transformer, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head: mean attention of queries t >= 2 on the first position and on position t - 1."""
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, 2:]  # [batch head query>=2 key]
    first = pattern[..., 0].mean((0, 2))
    previous = pattern.diagonal(offset=1, dim1=-2, dim2=-1).mean((0, 2))  # query t (row t-2) on key t-1
    return first, previous


def run(n_heads: int, d_model: int, n_symbols: int, length: int, steps: int, lr: float, batch_size: int,
        n_train: int, seed: int) -> dict:
    cpu = time.process_time()
    model = _model(n_heads, d_model, n_symbols, length, seed)
    held_out = _arch.two_tokens(1024, n_symbols, length, 2)
    n_params, flops = cost(model, held_out.tensors["tokens"][:1])
    trainer, diverged = _arch.fit(model, _arch.two_tokens(n_train, n_symbols, length, 1), None, steps, lr, seed,
                                  batch_size, warmup=max(1, steps // 20), schedule="cosine", log_every=10)
    if diverged:
        raise RuntimeError(f"n_heads={n_heads} seed={seed}: the loss became non-finite")
    loss, acc = _arch.loss_and_accuracy(model, held_out, 1024)
    first, previous = first_and_previous(model.eval(), held_out.tensors["tokens"][:256])
    threshold = 0.5 * math.log(n_symbols)
    return {"d_head": d_model // n_heads, "n_params": n_params, "flops": flops, "final_loss": loss,
            "accuracy": acc, "steps_to_half_uniform_loss": _arch.first_step_below(_arch.logged_losses(trainer),
                                                                                  threshold, steps),
            "attn_first": float(first.max()), "attn_previous": float(previous.max()),
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [dict(n_heads=h, d_model=cfg.d_model, n_symbols=cfg.n_symbols, length=cfg.length, steps=cfg.steps,
                     lr=cfg.lr, batch_size=cfg.batch_size, n_train=cfg.n_train) for h in sorted(cfg.heads)]
    table = grid(run, variants, cfg.seeds, desc="multi_head", workers=cfg.workers)
    summary = {f"held-out accuracy, {h} head(s) (mean over seeds)": table[table["n_heads"] == h]["accuracy"].mean()
               for h in sorted(cfg.heads)}
    summary["chance accuracy"] = 1 / cfg.n_symbols
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    one = table[table["n_heads"] == 1].set_index("seed")
    if one.empty:
        raise ValueError("the table has no one-head runs")
    spread = []  # per seed: the largest relative difference in parameters or FLOPs from that seed's one-head model
    for seed, rows in table.groupby("seed"):
        ref = one.loc[seed]
        spread.append(max(max(abs(r.n_params - ref.n_params) / ref.n_params, abs(r.flops - ref.flops) / ref.flops)
                          for r in rows.itertuples()))
    out = [judge(c["equal_cost"], spread, list(table.index), method="exact")]
    out.append(judge(c["one_head_fails"], *column(table, "accuracy", n_heads=1)))
    for claim in CLAIMS[2:]:
        h = int(claim.id[1:].split("_")[0])
        out.append(judge(claim, *paired(table, "accuracy", {"n_heads": h}, {"n_heads": 1})))
    return out


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    means = table.groupby("n_heads")[["accuracy", "attn_first", "attn_previous"]].mean()
    axes[0].plot(table["n_heads"], table["accuracy"], "o", color="C0", alpha=0.5)
    axes[0].plot(means.index, means["accuracy"], "-", color="C0", label="mean over seeds")
    axes[0].set(ylabel="held-out accuracy", ylim=(0, 1.02), title="f(first token, previous token) in one block")
    axes[1].plot(means.index, means["attn_first"], "o-", label="on the first position")
    axes[1].plot(means.index, means["attn_previous"], "o-", label="on the previous position")
    axes[1].set(ylabel="mean attention (the head most on it)", ylim=(0, 1.02), title="what the heads attend to")
    for ax in axes:
        ax.set(xscale="log", xlabel="heads (same d_model)")
        ax.set_xticks(list(means.index), [str(h) for h in means.index])
        ax.legend()
    return _arch.save_figure(fig, out_dir, "multi_head")


STUDY = Study(
    name="claims.multi_head",
    title="One head vs several at equal width and cost, on a task that needs two patterns at once",
    claims=CLAIMS,
    config=CONFIG,
    quick=Config(seeds=(0,), d_model=16, steps=5, batch_size=8, n_train=64, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
