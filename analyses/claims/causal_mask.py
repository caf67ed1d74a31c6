"""The decoder's causal mask keeps it from seeing the future.

Seeds 001 §13.2 and 003 #16 say the decoder's masked self-attention stops position i from seeing the words after it,
so that training and prediction match and no information leaks: a decoder trained without the mask can read the
token it is asked to predict, its teacher-forced loss collapses, and it cannot generate, because at generation time
the future is not there to read.

2-block decoders learn to reverse a sequence: tokens [x_1..x_n, SEP, x_n..x_1], scored on the next-token
predictions of the reversed half. One is trained with its causal mask, one without (`causal_mask=False`: every
position attends to every other), at equal steps, learning rate, batches and seeds. Measured on held-out sequences:
the teacher-forced loss and accuracy of the reversed half; free-running (greedy) generation from [x_1..x_n, SEP]
(the unmasked model re-runs the whole prefix at every step, since its earlier positions would see later ones), scored
token by token against the reversal; and through `hook_pattern`, the attention the answer positions put on later
positions (the head with the most).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main, paired

SOURCE = "001 §13.2; 003 #16"
CLAIMS = (
    Claim("unmasked_teacher_forced_loss_collapses", "Without the mask, the teacher-forced loss collapses",
          SOURCE, "teacher-forced held-out loss of the reversed half, no causal mask (nats)", "<", 0.1),
    Claim("unmasked_looks_ahead", "Without the mask, the decoder reads the future", SOURCE,
          "attention the answer positions put on later positions, no causal mask, the head with the most", ">", 0.5),
    Claim("unmasked_generation_fails", "Without the mask, free-running generation fails where the masked decoder "
          "generates", SOURCE, "free-running token accuracy, masked - unmasked", ">", 0.25),
)


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    n_symbols: int = 10
    half: int = 8
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    n_eval: int = 256
    workers: int = 2


@torch.no_grad()
def look_ahead(model: Transformer, tokens: torch.Tensor, half: int) -> float:
    """Largest over heads (all blocks) of the mean attention that answer positions n..2n-1 put on later keys."""
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    later = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).triu(1)
    best = 0.0
    for name in names:
        mass = (cache[name] * later).sum(-1)[:, :, half : 2 * half]  # [batch head answer_query]
        best = max(best, float(mass.mean((0, 2)).max()))
    return best


@torch.no_grad()
def free_running_accuracy(model: Transformer, tokens: torch.Tensor, half: int) -> float:
    """Greedy generation of the reversed half from [x, SEP], token accuracy against the reversal."""
    out = model.generate(tokens[:, : half + 1], max_new_tokens=half, use_cache=model.cfg.causal_mask)
    return float((out[:, half + 1 :] == tokens[:, half + 1 :]).float().mean())


def run(masked: bool, n_layers: int, d_model: int, n_heads: int, n_symbols: int, half: int, steps: int, lr: float,
        batch_size: int, n_train: int, n_eval: int, seed: int) -> dict:
    cpu = time.process_time()
    model = Transformer(TransformerConfig(arch="decoder", n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                                          d_vocab=n_symbols + 1, n_ctx=2 * half + 1, causal_mask=masked, seed=seed))
    held_out = _arch.reverse_lm(n_eval, n_symbols, half, 2)
    _, diverged = _arch.fit(model, _arch.reverse_lm(n_train, n_symbols, half, 1), None, steps, lr, seed, batch_size,
                            warmup=max(1, steps // 20), schedule="cosine")
    if diverged:
        raise RuntimeError(f"masked={masked} seed={seed}: the loss became non-finite")
    loss, acc = _arch.loss_and_accuracy(model, held_out, n_eval)
    model.eval()
    tokens = held_out.tensors["tokens"]
    return {"teacher_forced_loss": loss, "teacher_forced_accuracy": acc,
            "free_running_accuracy": free_running_accuracy(model, tokens, half),
            "look_ahead": look_ahead(model, tokens, half), "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [dict(masked=m, n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
                     n_symbols=cfg.n_symbols, half=cfg.half, steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size,
                     n_train=cfg.n_train, n_eval=cfg.n_eval) for m in (True, False)]
    table = grid(run, variants, cfg.seeds, desc="causal_mask", workers=cfg.workers)
    summary = {}
    for m in (True, False):
        rows = table[table["masked"] == m]
        name = "masked" if m else "unmasked"
        summary[f"teacher-forced accuracy, {name} (mean over seeds)"] = rows["teacher_forced_accuracy"].mean()
        summary[f"free-running accuracy, {name} (mean over seeds)"] = rows["free_running_accuracy"].mean()
    summary["chance accuracy"] = 1 / cfg.n_symbols
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    return [
        judge(c["unmasked_teacher_forced_loss_collapses"], *column(table, "teacher_forced_loss", masked=False)),
        judge(c["unmasked_looks_ahead"], *column(table, "look_ahead", masked=False)),
        judge(c["unmasked_generation_fails"], *paired(table, "free_running_accuracy", {"masked": True},
                                                      {"masked": False})),
    ]


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (col, label) in enumerate((("teacher_forced_accuracy", "teacher forced"),
                                      ("free_running_accuracy", "free running"))):
        means = [table[table["masked"] == m][col].mean() for m in (True, False)]
        ax.bar([j + 0.4 * (i - 0.5) for j in range(2)], means, width=0.4, label=label)
    ax.set_xticks(range(2), ["with causal mask", "without"])
    ax.set(ylabel="token accuracy (reversed half)", ylim=(0, 1.02), title="reversal, decoder")
    ax.legend()
    return _arch.save_figure(fig, out_dir, "causal_mask")


STUDY = Study(
    name="claims.causal_mask",
    title="A decoder with and without its causal mask: teacher-forced loss vs free-running generation",
    claims=CLAIMS,
    config=Config(),
    quick=Config(seeds=(0,), d_model=16, n_heads=2, half=4, steps=5, batch_size=8, n_train=64, n_eval=16, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
