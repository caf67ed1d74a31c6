"""Q and K need separate weights.

Seed 003 #2 says queries and keys use different weight matrices so that the model can encode them from different
angles: with one shared matrix they would produce the same or highly correlated representations and the model could
not recognise different patterns. Tying W_K = W_Q (and b_K = b_Q) makes each head's score x_i W W^T x_j symmetric
and its bilinear form positive semi-definite: a token's score with itself, |x_i W|^2, is at least its score with
any token of the same norm, so a tied head should attend to itself and fail where attention must be asymmetric.

A one-block bidirectional encoder (learned positions, token head) labels each position with the token before it:
position i must attend to i - 1 and not to i + 1, an asymmetric pattern. Tied (`tie_qk=True`) and untied models get
the same steps, learning rate, batches and seeds. Measured on held-out sequences: accuracy, and through
`hook_pattern` each head's mean attention on the query's own position and on the previous position; the head that
attends most to the previous position is reported.
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

SOURCE = "003 #2"
CLAIMS = (
    Claim("tied_fails", "With W_K = W_Q, the model fails a task that needs asymmetric attention", SOURCE,
          "held-out accuracy of the previous token, tied Q/K", "<", 0.9),
    Claim("untied_beats_tied", "Separate Q and K weights succeed where tied ones fail", SOURCE,
          "held-out accuracy, untied - tied", ">", 0.1),
    Claim("tied_attends_to_itself", "A tied Q/K head attends to its own position more than to the previous one",
          SOURCE, "attention on self - on the previous position, tied, the head most on the previous position",
          ">", 0.0),
)


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    d_model: int = 64
    n_heads: int = 4
    n_symbols: int = 16
    length: int = 16
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    workers: int = 2


@torch.no_grad()
def self_and_previous(model: Transformer, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head of block 0: mean attention on the query's own position and on the previous one (queries i >= 1)."""
    _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    pattern = cache["blocks.0.attn.hook_pattern"]  # [batch head query key]
    own = pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean((0, 2))
    previous = pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 2))
    return own, previous


def run(tied: bool, d_model: int, n_heads: int, n_symbols: int, length: int, steps: int, lr: float,
        batch_size: int, n_train: int, seed: int) -> dict:
    cpu = time.process_time()
    model = Transformer(TransformerConfig(arch="encoder", head="token", n_layers=1, d_model=d_model, n_heads=n_heads,
                                          d_vocab=n_symbols, n_ctx=length, tie_qk=tied, seed=seed))
    held_out = _arch.previous_token(1024, n_symbols, length, 2)
    _, diverged = _arch.fit(model, _arch.previous_token(n_train, n_symbols, length, 1), None, steps, lr, seed,
                            batch_size, warmup=max(1, steps // 20), schedule="cosine")
    if diverged:
        raise RuntimeError(f"tied={tied} seed={seed}: the loss became non-finite")
    loss, acc = _arch.loss_and_accuracy(model, held_out, 1024)
    model.eval()
    own, previous = self_and_previous(model, held_out.tensors["tokens"][:256])
    best = int(previous.argmax())
    return {"final_loss": loss, "accuracy": acc, "head": best, "attn_self": float(own[best]),
            "attn_previous": float(previous[best]), "attn_self_all_heads": float(own.mean()),
            "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [dict(tied=t, d_model=cfg.d_model, n_heads=cfg.n_heads, n_symbols=cfg.n_symbols, length=cfg.length,
                     steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, n_train=cfg.n_train)
                for t in (False, True)]
    table = grid(run, variants, cfg.seeds, desc="qk_separate", workers=cfg.workers)
    summary = {f"held-out accuracy, {'tied' if t else 'untied'} (mean over seeds)":
               table[table["tied"] == t]["accuracy"].mean() for t in (False, True)}
    summary["chance accuracy"] = 1 / cfg.n_symbols
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    tied = table[table["tied"] == True].sort_values("seed")  # noqa: E712
    return [
        judge(c["tied_fails"], *column(table, "accuracy", tied=True)),
        judge(c["untied_beats_tied"], *paired(table, "accuracy", {"tied": False}, {"tied": True})),
        judge(c["tied_attends_to_itself"], (tied["attn_self"] - tied["attn_previous"]).to_numpy(),
              [int(i) for i in tied.index]),
    ]


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    names = ["untied", "tied"]
    acc = [table[table["tied"] == t]["accuracy"] for t in (False, True)]
    axes[0].bar(names, [a.mean() for a in acc], yerr=[a.std() if len(a) > 1 else 0 for a in acc], color="C0")
    axes[0].set(ylabel="held-out accuracy", ylim=(0, 1.02), title="label = previous token (encoder)")
    for i, (col, label) in enumerate((("attn_self", "own position"), ("attn_previous", "previous position"))):
        axes[1].bar([j + 0.4 * (i - 0.5) for j in range(2)],
                    [table[table["tied"] == t][col].mean() for t in (False, True)], width=0.4, label=label)
    axes[1].set_xticks(range(2), names)
    axes[1].set(ylabel="mean attention", ylim=(0, 1.02), title="the head most on the previous position")
    axes[1].legend()
    return _arch.save_figure(fig, out_dir, "qk_separate")


STUDY = Study(
    name="claims.qk_separate",
    title="Separate vs tied query and key weights on a task that needs asymmetric attention",
    claims=CLAIMS,
    config=Config(),
    quick=Config(seeds=(0,), d_model=16, n_heads=2, steps=5, batch_size=8, n_train=64, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
