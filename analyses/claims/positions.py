"""Attention needs position information (000 1.1.2, 001 §8, 003 #9-10; Kazemnejad et al. 2023).

The seeds say a Transformer cannot capture order without a positional encoding, because attention is blind to
order: "shuffle the rows of K and V and the attention result is the same" (000 1.1.2). The task isolates order and
nothing else: every position must output the token `offset` places before it (random symbols, so content gives no
hint). Two architectures (a bidirectional encoder with a per-token head; a causal decoder) each get four position
schemes (none, sinusoidal, learned absolute, rotary) at the same size, steps and learning rate, and are tested at the
trained length and at twice that length.

Measured per run: accuracy at the trained length; accuracy on the positions beyond the trained length in sequences
twice as long; the permutation-equivariance error (how much the outputs of a shuffled input differ from the
shuffled outputs); and, from `hook_pattern`, the attention the best head puts on the key `offset` places back.
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
from probe.study import Claim, Outcome, Study, Verdict, column, grid, judge, main, paired
from probe.train.batches import DictDataset

SOURCE = "000 1.1.2; 001 §8.2; 003 #9-10"
CLAIMS = (
    Claim("encoder_equivariant", "Without positions an encoder's outputs follow any shuffle of its input: attention is "
          "blind to order", "000 1.1.2", "max |f(shuffled x) - shuffled f(x)| / max |f(x)|, encoder without positions",
          "<", 1e-4),
    Claim("encoder_fails_without", "An encoder without position information cannot solve an order task",
          SOURCE, "accuracy at the trained length, encoder without positions", "<", 0.3),
    Claim("decoder_learns_without", "A causal decoder learns the order task without any position information: the "
          "causal mask itself reveals position (not in the seeds)", "Kazemnejad et al. 2023, against 000 1.1.2",
          "accuracy at the trained length, decoder without positions", ">", 0.9),
    Claim("rotary_extrapolates_encoder", "Rotary positions extrapolate to longer inputs better than learned ones "
          "(encoder)", "003 #10; Su et al. 2021", "accuracy beyond the trained length, rotary - learned, encoder",
          ">", 0.0),
    Claim("rotary_extrapolates_decoder", "Rotary positions extrapolate to longer inputs better than learned ones "
          "(decoder)", "003 #10; Su et al. 2021", "accuracy beyond the trained length, rotary - learned, decoder",
          ">", 0.0),
    Claim("sinusoidal_extrapolates_encoder", "Sinusoidal positions extrapolate to longer inputs better than learned "
          "ones (encoder)", "003 #9; Vaswani et al. 2017 §3.5",
          "accuracy beyond the trained length, sinusoidal - learned, encoder", ">", 0.0),
    Claim("sinusoidal_extrapolates_decoder", "Sinusoidal positions extrapolate to longer inputs better than learned "
          "ones (decoder)", "003 #9; Vaswani et al. 2017 §3.5",
          "accuracy beyond the trained length, sinusoidal - learned, decoder", ">", 0.0),
)
ARCHS = ("encoder", "decoder")
POSITIONS = ("none", "sinusoidal", "learned", "rotary")


@dataclass(frozen=True)
class Config:
    n_symbols: int = 16
    length: int = 16  # trained length; tested also at 2 * length
    offset: int = 1  # each position outputs the token this many places before it
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-3  # _kit.recipe (AdamW, warmup, cosine decay); the same for every variant
    n_train: int = 20_000
    n_eval: int = 512
    seeds: tuple[int, ...] = (0, 1, 2)
    workers: int = 2


def offset_task(n: int, length: int, n_symbols: int, offset: int, seed: int) -> DictDataset:
    """Random symbols; position i is labelled with the token at i - offset (the first `offset` are not scored)."""
    if not 1 <= offset < length:
        raise ValueError(f"offset={offset} must be in [1, length={length})")
    tokens = torch.randint(0, n_symbols, (n, length), generator=torch.Generator().manual_seed(seed))
    labels = torch.full_like(tokens, -100)
    labels[:, offset:] = tokens[:, :-offset]
    return DictDataset(tokens=tokens, labels=labels)


@functools.lru_cache(maxsize=4)
def _data(cfg: Config) -> tuple[DictDataset, dict, dict]:
    """Training set and the two evaluation sets, built once per process and shared by every run."""
    train = offset_task(cfg.n_train, cfg.length, cfg.n_symbols, cfg.offset, seed=10_000)
    short = offset_task(cfg.n_eval, cfg.length, cfg.n_symbols, cfg.offset, seed=20_000)[:]
    long = offset_task(cfg.n_eval, 2 * cfg.length, cfg.n_symbols, cfg.offset, seed=30_000)[:]
    return train, short, long


def model_config(cfg: Config, arch: str, position: str, seed: int) -> TransformerConfig:
    head = {"head": "token"} if arch == "encoder" else {}
    return TransformerConfig(arch=arch, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                             d_vocab=cfg.n_symbols, n_ctx=2 * cfg.length, positional_embedding_type=position,
                             seed=seed, **head)


def offset_attention(patterns: list[torch.Tensor], offset: int, first: int = 0) -> float:
    """The largest mean attention weight any head (of any layer) puts on the key `offset` places back, over the
    queries from position max(first, offset) on. `patterns`: [batch, head, query, key] per layer."""
    best = 0.0
    for p in patterns:
        q = torch.arange(max(first, offset), p.shape[2])
        best = max(best, float(p[:, :, q, q - offset].mean((0, 2)).max()))
    return best


def permutation_error(model: Transformer, tokens: torch.Tensor, seed: int = 0) -> float:
    """max |f(x[:, perm]) - f(x)[:, perm]| / max |f(x)|: zero for a permutation-equivariant model."""
    perm = torch.randperm(tokens.shape[1], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = model(tokens)
        shuffled = model(tokens[:, perm])
    return float((shuffled - out[:, perm]).abs().max() / out.abs().max())


def measure(model: Transformer, batch: dict, offset: int, first: int = 0) -> tuple[float, float]:
    """(accuracy on scored positions from `first` on, offset attention) on one evaluation batch."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch["tokens"], names_filter=names)
    labels = batch["labels"][:, first:]
    keep = labels != -100
    acc = float((logits[:, first:].argmax(-1)[keep] == labels[keep]).float().mean())
    return acc, offset_attention([cache[n] for n in names], offset, first)


def run_one(arch: str, position: str, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    train, short, long = _data(cfg)
    model = Transformer(model_config(cfg, arch, position, seed))
    tc = recipe(cfg, seed)
    trainer = Trainer(model, train, None, tc)
    trainer.fit()
    model.eval()
    acc, attn = measure(model, short, cfg.offset)
    acc_beyond, attn_beyond = measure(model, long, cfg.offset, first=cfg.length)
    return {"accuracy": acc, "accuracy_beyond": acc_beyond, "offset_attention": attn,
            "offset_attention_beyond": attn_beyond, "permutation_error": permutation_error(model, short["tokens"]),
            "final_loss": trainer.last_loss, "cpu_s": time.process_time() - cpu}


def bag_of_tokens_accuracy(batch: dict) -> float:
    """The expected accuracy of the best guess that knows a position's token and which tokens the sequence holds,
    but not their order: the most frequent of the other tokens, ties split evenly (the best an order-blind model
    can do)."""
    tokens, labels = batch["tokens"], batch["labels"]
    onehot = torch.nn.functional.one_hot(tokens)  # [batch, pos, symbols]
    others = onehot.sum(1, keepdim=True) - onehot  # the other tokens' counts, seen from each position
    best = others == others.max(-1, keepdim=True).values
    keep = labels != -100
    hit = best.gather(-1, labels.clamp_min(0)[..., None])[..., 0].float() / best.sum(-1)
    return float(hit[keep].mean())


def experiment(cfg: Config) -> Outcome:
    variants = [{"arch": a, "position": p} for a in ARCHS for p in POSITIONS]
    table = grid(functools.partial(run_one, cfg=cfg), variants, cfg.seeds, desc="positions", workers=cfg.workers)
    summary = {"order-blind best guess (accuracy)": bag_of_tokens_accuracy(_data(cfg)[1]),
               "CPU seconds, all runs": float(table["cpu_s"].sum())}
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    out = []
    values, rows = column(table, "permutation_error", arch="encoder", position="none")
    out.append(judge(c["encoder_equivariant"], values, rows, method="exact"))
    out.append(judge(c["encoder_fails_without"], *column(table, "accuracy", arch="encoder", position="none")))
    out.append(judge(c["decoder_learns_without"], *column(table, "accuracy", arch="decoder", position="none")))
    for kind in ("rotary", "sinusoidal"):
        for arch in ARCHS:
            values, rows = paired(table, "accuracy_beyond", {"arch": arch, "position": kind},
                                  {"arch": arch, "position": "learned"})
            out.append(judge(c[f"{kind}_extrapolates_{arch}"], values, rows))
    return out


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    width, x = 0.38, np.arange(len(POSITIONS))
    for ax, arch in zip(axes, ARCHS):
        for j, (metric, label) in enumerate([("accuracy", "trained length"), ("accuracy_beyond", "beyond it")]):
            samples = [t[(t.arch == arch) & (t.position == p)][metric] for p in POSITIONS]
            seed_bars(ax, x + (j - 0.5) * width, samples, width, label=label)
        ax.set(xticks=x, xticklabels=POSITIONS, title=f"{arch}", ylim=(0, 1.05))
    axes[0].set_ylabel("accuracy (token at offset)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Order task: accuracy by position scheme (bars: mean over seeds, dots: seeds)")
    return save(fig, out / "accuracy.png")


STUDY = Study(
    name="claims.positions",
    title="Positions: attention needs position information (and a causal decoder finds its own)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(steps=12, n_train=256, n_eval=32, length=8, d_model=16, n_heads=2, batch_size=32, seeds=(0,),
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
