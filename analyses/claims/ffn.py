"""The feed-forward network adds what attention cannot; GELU vs ReLU (001 §16, 003 #14; Geva et al. 2021).

The seeds: after attention has gathered the sequence information, the FFN maps it through a nonlinearity into a
new space (001 §16.2); it brings the nonlinearity and the expressiveness (003 #14); GELU is smoother than ReLU and
helps learn more complex features (003 #14). Geva et al. read FFN layers as key-value memories.

A task isolates the lookup: a fixed random table of facts, value = table[a, b] for a key a and a relation b (the
sequence "a b", the value predicted at b), every fact trained on, accuracy measured on the facts themselves
(memorisation is the point). A lookup of one token would not do: the direct path W_E W_U alone is already a table
from the current token to the next. Here attention must bring a to b's position and something must map the pair
to its value. Variants, at the same steps and learning-rate grid (each variant at its best rate by final training
loss): one attention-only layer; attention-only with enough layers to match the parameters of one full layer; one
layer with an FFN, ReLU or GELU. For FFN models the FFN's output is then zero-ablated at `hook_mlp_out`; the
attention from b to a is read from `hook_pattern`.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analyses.claims._kit import recipe, seed_bars
from analyses.claims._plot import save
from probe import Trainer, Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main
from probe.train.batches import DictDataset

SOURCE = "001 §16; 003 #14"
CLAIMS = (
    Claim("ffn_adds_lookup", "An FFN learns a table of facts that attention alone (same depth) cannot", SOURCE,
          "accuracy on the facts, FFN (GELU) - attention-only, one layer each", ">", 0.5),
    Claim("ffn_beats_matched_attention", "The FFN's advantage is not its parameters: attention-only with as many "
          "parameters still cannot learn the table", SOURCE,
          "accuracy on the facts, FFN (GELU) 1 layer - attention-only with matched parameters", ">", 0.5),
    Claim("table_lives_in_ffn", "The FFN holds the facts: zero-ablating its output loses them",
          f"{SOURCE}; Geva et al. 2021", "accuracy drop when hook_mlp_out is zeroed, FFN (GELU) model", ">", 0.5),
    Claim("gelu_matches_relu", "GELU is at least as good as ReLU: its accuracy is not lower by more than 0.02",
          "003 #14", "accuracy on the facts, GELU - ReLU", ">", -0.02),
)
VARIANTS = ("attn_only", "attn_only_matched", "ffn_relu", "ffn_gelu")


@dataclass(frozen=True)
class Config:
    n_keys: int = 32
    n_relations: int = 32
    n_values: int = 32
    d_model: int = 64
    n_heads: int = 4
    steps: int = 1000
    batch_size: int = 128
    lrs: tuple[float, ...] = (1e-3, 3e-3)  # _kit.recipe (AdamW, warmup, cosine decay) at each
    seeds: tuple[int, ...] = (0, 1, 2)
    workers: int = 2


def facts(n_keys: int, n_relations: int, n_values: int, seed: int = 0) -> DictDataset:
    """Every (key, relation) pair once: tokens [a, n_keys + b], label at the second position the value token
    n_keys + n_relations + table[a, b], with table uniform random (fixed by `seed`)."""
    table = torch.randint(0, n_values, (n_keys, n_relations), generator=torch.Generator().manual_seed(seed))
    a, b = torch.meshgrid(torch.arange(n_keys), torch.arange(n_relations), indexing="ij")
    tokens = torch.stack([a.flatten(), n_keys + b.flatten()], 1)
    labels = torch.full_like(tokens, -100)
    labels[:, 1] = n_keys + n_relations + table.flatten()
    return DictDataset(tokens=tokens, labels=labels)


def matched_layers(cfg: Config) -> int:
    """Attention-only layers whose parameters match one layer with an FFN (attention 4 d^2, FFN 8 d^2 + biases)."""
    full = TransformerConfig(d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=1)
    per_attention = 4 * full.d_model * full.n_heads * full.d_head
    return round(full.n_params / per_attention)


def model_config(cfg: Config, variant: str, seed: int) -> TransformerConfig:
    layers = matched_layers(cfg) if variant == "attn_only_matched" else 1
    act = "relu" if variant == "ffn_relu" else "gelu"
    return TransformerConfig(d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=layers, attn_only=variant.startswith(
        "attn_only"), act_fn=act, d_vocab=cfg.n_keys + cfg.n_relations + cfg.n_values, n_ctx=2, seed=seed)


def accuracy(model: Transformer, data: dict, hooks: list | None = None) -> float:
    with torch.no_grad():
        logits = model.run_with_hooks(data["tokens"], fwd_hooks=hooks or [])
    return float((logits[:, 1].argmax(-1) == data["labels"][:, 1]).float().mean())


def run_one(variant: str, lr: float, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    data = facts(cfg.n_keys, cfg.n_relations, cfg.n_values)
    model = Transformer(model_config(cfg, variant, seed))
    tc = recipe(cfg, seed, lr=lr)
    trainer = Trainer(model, data, None, tc)
    trainer.fit()
    model.eval()
    everything = data[:]
    acc = accuracy(model, everything)
    ablated = acc
    if not model.cfg.attn_only:
        zero = [("blocks.0.hook_mlp_out", lambda x, hook: torch.zeros_like(x))]
        ablated = accuracy(model, everything, zero)
    name = f"blocks.{model.cfg.n_layers - 1}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = model.run_with_cache(everything["tokens"], names_filter=[name])
    to_key = float(cache[name][:, :, 1, 0].mean(0).max())  # b's attention to a, best head of the last layer
    return {"accuracy": acc, "ablated_accuracy": ablated, "attention_to_key": to_key,
            "n_params": sum(p.numel() for p in model.parameters()), "final_loss": trainer.last_loss,
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [{"variant": v, "lr": lr} for v in VARIANTS for lr in cfg.lrs]
    table = grid(functools.partial(run_one, cfg=cfg), variants, cfg.seeds, desc="ffn", workers=cfg.workers)
    return Outcome(table, {"facts": cfg.n_keys * cfg.n_relations, "attention-only layers matching one full layer":
                           matched_layers(cfg), "CPU seconds, all runs": float(table["cpu_s"].sum())})


def best(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The runs of `variant` at its learning rate with the lowest mean final training loss, one per seed."""
    runs = table[table["variant"] == variant]
    if runs.empty:
        raise ValueError(f"no runs of variant={variant!r}; variants: {sorted(table['variant'].unique())}")
    lr = runs.groupby("lr")["final_loss"].mean().idxmin()
    return runs[runs["lr"] == lr].set_index("seed", drop=False)


def diff(a: pd.DataFrame, b: pd.DataFrame, metric_a: str, metric_b: str | None = None
         ) -> tuple[np.ndarray, list[int]]:
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError("the two selections share no seed")
    values = a.loc[seeds, metric_a].to_numpy(float) - b.loc[seeds, metric_b or metric_a].to_numpy(float)
    return values, [int(r) for r in list(a.loc[seeds, "row"]) + list(b.loc[seeds, "row"])]


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    t = table.assign(row=table.index)
    gelu, relu = best(t, "ffn_gelu"), best(t, "ffn_relu")
    return [judge(c["ffn_adds_lookup"], *diff(gelu, best(t, "attn_only"), "accuracy")),
            judge(c["ffn_beats_matched_attention"], *diff(gelu, best(t, "attn_only_matched"), "accuracy")),
            judge(c["table_lives_in_ffn"], *diff(gelu, gelu, "accuracy", "ablated_accuracy")),
            judge(c["gelu_matches_relu"], *diff(gelu, relu, "accuracy"))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table.assign(row=outcome.table.index)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    runs = [best(t, variant) for variant in VARIANTS]
    seed_bars(ax, range(len(VARIANTS)), [g["accuracy"] for g in runs], color=[f"C{k}" for k in range(len(VARIANTS))])
    for k, (variant, g) in enumerate(zip(VARIANTS, runs)):
        if variant.startswith("ffn"):
            ax.scatter(np.full(len(g), k), g["ablated_accuracy"], marker="x", color="r", zorder=3,
                       label="FFN output zeroed" if variant == "ffn_gelu" else None)
        ax.text(k, 0.02, f"{int(g['n_params'].iloc[0]) // 1000}k params", ha="center", fontsize=7, color="w")
    ax.set(xticks=range(len(VARIANTS)), xticklabels=VARIANTS, ylabel="accuracy on the facts", ylim=(0, 1.05),
           title="A table of facts: attention-only vs FFN (each at its best lr)")
    ax.legend(fontsize=8)
    return save(fig, out / "ffn.png")


STUDY = Study(
    name="claims.ffn",
    title="The FFN: a table of facts attention cannot hold; GELU vs ReLU",
    claims=CLAIMS,
    config=Config(),
    quick=Config(n_keys=8, n_relations=8, n_values=8, d_model=16, n_heads=2, steps=10, batch_size=32, lrs=(3e-3,),
                 seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
