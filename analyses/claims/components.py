"""Attention, residuals, LayerNorm and the FFN together make the Transformer work.

Seed 001 §18.1 says that although the paper is called "Attention is all you need", later work showed attention,
residual connections, layer normalisation and the FFN together make the Transformer work. If each matters, removing
any one of them, with everything else and the training budget unchanged, costs loss.

One 4-block pre-norm character-level language model trained at equal budget (steps, learning rate, batches, seeds)
in five forms: complete; without attention (every block's attention output zeroed by a hook on `hook_attn_out`
during training and evaluation, so tokens never exchange information); without residual connections
(`residual=False`); without LayerNorm (`normalization_type=None`); without the FFN (`attn_only=True`). The measure
is the held-out loss; each ablation's cost is its loss minus the complete model's, seed by seed.
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

SOURCE = "001 §18.1"
ABLATIONS = {  # variant -> config changes (attention is removed by a hook instead)
    "complete": {},
    "no_attention": {},
    "no_residual": {"residual": False},
    "no_layernorm": {"normalization_type": None},
    "no_ffn": {"attn_only": True},
}
CLAIMS = tuple(
    Claim(f"{name}_costs_loss", f"Removing {name.removeprefix('no_')} from the Transformer costs loss", SOURCE,
          f"held-out loss {name} - complete (nats)", ">", 0.0)
    for name in ABLATIONS if name != "complete")


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_layers: int = 4
    d_model: int = 32
    n_heads: int = 4
    max_len: int = 32
    steps: int = 600
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    workers: int = 2


def run(variant: str, n_layers: int, d_model: int, n_heads: int, max_len: int, steps: int, lr: float,
        batch_size: int, n_train: int, seed: int) -> dict:
    cpu = time.process_time()
    _, vocab = _arch.corpus()
    model = Transformer(TransformerConfig(arch="decoder", n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                                          d_vocab=vocab, n_ctx=max_len, seed=seed, **ABLATIONS[variant]))
    if variant == "no_attention":
        _arch.with_hooks(model, [(f"blocks.{i}.hook_attn_out", _arch.zero_hook) for i in range(n_layers)])
    n_params = sum(p.numel() for p in model.parameters())
    train = _arch.text_windows(n_train, max_len, max_len, 1)
    held_out = _arch.text_windows(512, max_len, max_len, 2, "eval")
    _, diverged = _arch.fit(model, train, None, steps, lr, seed, batch_size, warmup=max(1, steps // 20),
                            schedule="cosine")
    loss, acc = (math.log(vocab), 0.0) if diverged else _arch.loss_and_accuracy(model, held_out)
    return {"final_loss": loss, "accuracy": acc, "diverged": diverged, "n_params": n_params,
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    shape = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, max_len=cfg.max_len,
                 steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, n_train=cfg.n_train)
    table = grid(run, [dict(variant=v, **shape) for v in ABLATIONS], cfg.seeds, desc="components",
                 workers=cfg.workers)
    summary = {f"held-out loss, {v} (mean over seeds)": table[table["variant"] == v]["final_loss"].mean()
               for v in ABLATIONS}
    summary["runs that diverged (scored as a uniform prediction)"] = int(table["diverged"].sum())
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    return [judge(c, *paired(table, "final_loss", {"variant": c.id.removesuffix("_costs_loss")},
                             {"variant": "complete"})) for c in CLAIMS]


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    stats = table.groupby("variant")["final_loss"].agg(["mean", "std"]).reindex(list(ABLATIONS))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(range(len(stats)), stats["mean"], yerr=stats["std"].fillna(0), color=["C0"] + ["C3"] * (len(stats) - 1))
    ax.set_xticks(range(len(stats)), [v.replace("_", " ") for v in stats.index])
    ax.set(ylabel="held-out loss (nats)", title="ablations at equal budget", ylim=(stats["mean"].min() * 0.9, None))
    return _arch.save_figure(fig, out_dir, "components")


STUDY = Study(
    name="claims.components",
    title="Attention, residuals, LayerNorm and FFN: what each one's removal costs",
    claims=CLAIMS,
    config=Config(),
    quick=Config(seeds=(0,), n_layers=2, d_model=16, n_heads=2, max_len=8, steps=3, batch_size=8, n_train=64,
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
