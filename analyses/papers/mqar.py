"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology", arXiv 2312.04927) at a fixed model width.

A sequence lists N (key, value) pairs, then the N keys again in random order; at each repeated key the model must
output its value (accuracy over those positions only). Keys come from the first half of the vocabulary, values from
the second. Two-layer, one-head, attention-only `probe.Transformer` decoders of the same width (learned positions)
differ only in their token mixer: softmax attention, sum-rule linear attention (elu+1, d_phi = d_model), DPFP (nu = 1,
d_phi = 2 d_model), and the delta rule (elu+1, sum-normalised). As in Zoology, every mixer reads its input through a
short causal depthwise convolution (kernel 3, `TransformerConfig.short_conv`), so binding each value to its key does
not have to be learned as a previous-token head. Each model trains through `probe.Trainer` (AdamW, warm-up then
cosine decay, clipped gradients) on fresh batches; accuracy is measured on held-out sequences. A sum-rule model is
expected to lose recall once N reaches its feature dimension d_phi (Schlag et al. 2021; `papers.capacity` measures
the same bound); that claim is judged on the sum-rule models whose d_phi the sweep's N reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, grid, judge, main, not_measured, paired, per_seed
from probe.train import TrainConfig, Trainer

ZOOLOGY = "Arora et al. 2023, Zoology (arXiv 2312.04927)"
SCHLAG = "Schlag, Irie, Schmidhuber, ICML 2021 (arXiv 2102.11174v3)"
SHORT_CONV = 3
MODELS = {  # id -> TransformerConfig overrides
    "softmax": dict(attention="softmax"),
    "linear": dict(attention="linear", feature_map="elu_plus_one", update_rule="sum"),
    "dpfp": dict(attention="linear", feature_map="dpfp", dpfp_nu=1, update_rule="sum"),
    "delta": dict(attention="linear", feature_map="elu_plus_one", update_rule="delta"),
}
FIXED_STATE = ("linear", "dpfp", "delta")
SUM_RULE = ("linear", "dpfp")
PHI_PER_WIDTH = {"linear": 1, "dpfp": 2, "delta": 1}  # d_phi / d_head (one head: d_head = d_model)
RECALLS, DROP = 0.9, 0.2
CLAIMS = (
    Claim("softmax_recalls", "At fixed width softmax attention recalls at every N", ZOOLOGY,
          "smallest softmax accuracy over N", ">=", RECALLS),
    Claim("fixed_state_recalls_small_N", "Every fixed-state model recalls at small N", ZOOLOGY,
          "smallest accuracy of the fixed-state models (linear, DPFP, delta) at the smallest N", ">=", RECALLS),
    Claim("sum_rule_degrades", "A sum-rule model loses recall once N reaches its feature dimension d_phi",
          f"{ZOOLOGY}; {SCHLAG}",
          "smallest, over the sum-rule models whose d_phi the sweep reaches, accuracy at the smallest N minus the "
          "lowest accuracy at N >= d_phi", ">=", DROP),
    Claim("delta_at_least_sum", "The delta rule recalls at least as well as the sum rule with the same feature map",
          f"{SCHLAG}; {ZOOLOGY}", "accuracy of the delta rule minus of the sum rule (elu+1) at the largest N", ">=",
          0.0),
)


@dataclass(frozen=True)
class Config:
    models: tuple[str, ...] = tuple(MODELS)
    pairs: tuple[int, ...] = (4, 8, 16, 32)  # N
    vocab: int = 64  # keys [0, vocab/2), values [vocab/2, vocab): N <= vocab / 2
    d_model: int = 32
    steps: int = 800
    batch: int = 64
    lr: float = 1e-2
    eval_size: int = 512
    seeds: tuple[int, ...] = (0, 1, 2)


def mqar_batch(n_pairs: int, batch: int, gen: torch.Generator, vocab: int = 64) -> tuple[Tensor, Tensor]:
    """tokens [batch 3N], labels [batch 3N] (-100 except where a key is queried)."""
    half = vocab // 2
    if not 1 <= n_pairs <= half:
        raise ValueError(f"n_pairs={n_pairs} must be in [1, {half}] (distinct keys from a vocabulary of {half})")
    keys = torch.argsort(torch.rand(batch, half, generator=gen), -1)[:, :n_pairs]
    values = torch.randint(half, vocab, (batch, n_pairs), generator=gen)
    order = torch.argsort(torch.rand(batch, n_pairs, generator=gen), -1)
    queries, answers = keys.gather(1, order), values.gather(1, order)
    tokens = torch.cat([torch.stack([keys, values], -1).flatten(1), queries], 1)
    labels = torch.full_like(tokens, -100)
    labels[:, 2 * n_pairs:] = answers
    return tokens, labels


def model_for(name: str, n_ctx: int, seed: int = 0, d_model: int = 32, vocab: int = 64) -> Transformer:
    if name not in MODELS:
        raise ValueError(f"model={name!r} is not one of {tuple(MODELS)}")
    return Transformer(TransformerConfig(d_model=d_model, n_layers=2, n_heads=1, d_vocab=vocab, n_ctx=n_ctx,
                                         attn_only=True, short_conv=SHORT_CONV, seed=seed, **MODELS[name]))


def d_phi(name: str, d_model: int) -> float:
    return PHI_PER_WIDTH[name] * d_model if name in PHI_PER_WIDTH else float("inf")


def batches(n_pairs: int, batch: int, seed: int, vocab: int):
    gen = torch.Generator().manual_seed(seed + 1)
    while True:
        tokens, labels = mqar_batch(n_pairs, batch, gen, vocab)
        yield {"tokens": tokens, "labels": labels}


def train_and_eval(model: str, n_pairs: int, seed: int, cfg: Config) -> dict:
    """Train one model on fresh MQAR batches; its recall accuracy on held-out sequences."""
    net = model_for(model, 3 * n_pairs, seed, cfg.d_model, cfg.vocab)
    train = TrainConfig(steps=cfg.steps, lr=cfg.lr, optimizer="adamw", weight_decay=0.0, schedule="cosine",
                        warmup_steps=cfg.steps // 10, grad_clip=1.0, seed=seed, log_every=max(1, cfg.steps // 10),
                        progress=False)
    trainer = Trainer(net, batches(n_pairs, cfg.batch, seed, cfg.vocab), None, train)
    trainer.fit()
    tokens, labels = (t.to(trainer.device) for t in
                      mqar_batch(n_pairs, cfg.eval_size, torch.Generator().manual_seed(seed + 2), cfg.vocab))
    net.eval()
    with torch.no_grad():
        pred = net(tokens).argmax(-1)
    return {"d_phi": d_phi(model, cfg.d_model), "accuracy": (pred == labels)[labels != -100].float().mean().item(),
            "train_loss": trainer.last_loss}


def experiment(cfg: Config) -> Outcome:
    for m in cfg.models:
        if m not in MODELS:
            raise ValueError(f"model {m!r} is not one of {tuple(MODELS)}")
    variants = [{"model": m, "n_pairs": n} for m in cfg.models for n in cfg.pairs]
    return Outcome(grid(partial(train_and_eval, cfg=cfg), variants, cfg.seeds, desc="mqar"))


def degradation(g: pd.DataFrame) -> float | None:
    """For one seed: the smallest, over sum-rule models whose d_phi some N reaches, drop in accuracy from the
    smallest N to the lowest at N >= d_phi (None if no model's d_phi is reached)."""
    small = g["n_pairs"].min()
    drops = [r.loc[r["n_pairs"] == small, "accuracy"].iloc[0] - r.loc[r["n_pairs"] >= r["d_phi"], "accuracy"].min()
             for m, r in g.groupby("model") if m in SUM_RULE and (r["n_pairs"] >= r["d_phi"]).any()]
    return min(drops) if drops else None


def verdicts(table: pd.DataFrame) -> list:
    small, large = table["n_pairs"].min(), table["n_pairs"].max()
    fixed = table[table["model"].isin(FIXED_STATE) & (table["n_pairs"] == small)]
    drops = [d for _, g in table.groupby("seed") if (d := degradation(g)) is not None]
    sum_rows = [int(i) for i in table.index[table["model"].isin(SUM_RULE)]]
    return [judge(CLAIMS[0], *per_seed(table, "accuracy", "min", model="softmax")),
            judge(CLAIMS[1], *per_seed(fixed, "accuracy", "min")),
            # no N reaches a sum-rule model's d_phi: the claim is not measured by this sweep
            judge(CLAIMS[2], drops, sum_rows) if drops else not_measured(CLAIMS[2], sum_rows),
            judge(CLAIMS[3], *paired(table, "accuracy", {"model": "delta", "n_pairs": large},
                                     {"model": "linear", "n_pairs": large}))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, g in t.groupby("model", sort=False):
        s = g.groupby("n_pairs")["accuracy"].agg(["mean", "min", "max"])
        d = g["d_phi"].iloc[0]
        ax.errorbar(s.index, s["mean"], [s["mean"] - s["min"], s["max"] - s["mean"]], fmt="o-", capsize=3,
                    label=model if np.isinf(d) else f"{model} (d_phi {d:g})")
    pairs = sorted(t["n_pairs"].unique())
    ax.set(xscale="log", xlabel="number of key-value pairs N", ylabel="recall accuracy (mean, range over seeds)",
           ylim=(0, 1.02), title=f"MQAR, {t['seed'].nunique()} seed(s)")
    ax.set_xticks(pairs, [str(p) for p in pairs])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    path = out / "mqar.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.mqar", title="MQAR: recall against the number of key-value pairs at fixed width",
    claims=CLAIMS, config=Config(), quick=Config(pairs=(2, 4), d_model=4, steps=5, batch=16, eval_size=32, seeds=(0,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
