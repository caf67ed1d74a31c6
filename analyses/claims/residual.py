"""Residual connections let deep stacks train.

Seeds 000 (1.2.3), 001 §14 and 003 #11 say the "Add" of "Add & Norm" is a residual connection that keeps deep
networks from degrading: it lets the gradient reach the lower layers, so a deep stack does not suffer vanishing
gradients, converges faster and can be made deeper (He et al. 2016).

Character-level pre-norm language models of 2, 6 and 12 blocks, with and without residual connections
(`residual=False`: each sublayer's output replaces the stream instead of being added to it), the same width, steps,
learning rate, batches and seeds. At initialisation: the loss gradient's norm over each block's weights from one
backward pass on a large batch of held-out text, and the ratio of the first block's to the last block's, the share of
the gradient that reaches the bottom of the stack. After training: the held-out loss, compared with a unigram model
(the cross-entropy of predicting each character by its frequency, which needs no context): the share of the residual
model's gain over the unigram model that the model without residuals achieves at the same depth.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main

SOURCE = "000 1.2.3; 001 §14; 003 #11; He et al. 2016"
BLOCK_WEIGHTS = ("attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "mlp.W_in", "mlp.W_out")


def _claims(deep: int, shallow: int) -> tuple[Claim, ...]:
    return (
        Claim(f"nores_grad_vanishes_{deep}", f"Without residuals, the gradient reaching the first of {deep} blocks "
              "vanishes", SOURCE, f"first / last block gradient norm at initialisation, {deep} blocks, no "
              "residuals", "<", 0.1),
        Claim(f"res_grad_reaches_first_{deep}", f"With residuals, the gradient reaches the first of {deep} blocks",
              SOURCE, f"first / last block gradient norm at initialisation, {deep} blocks, residuals", ">", 0.1),
        Claim(f"nores_deep_fails_{deep}", f"Without residuals, a {deep}-block model fails to train", SOURCE,
              f"share of the residual model's gain over a unigram model reached without residuals, {deep} blocks",
              "<", 0.5),
        Claim(f"nores_shallow_trains_{shallow}", f"Without residuals, a {shallow}-block model still trains",
              SOURCE, f"share of the residual model's gain over a unigram model reached without residuals, "
              f"{shallow} blocks", ">", 0.5),
    )


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (2, 6, 12)
    d_model: int = 32
    n_heads: int = 4
    max_len: int = 32
    steps: int = 400
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    grad_batch: int = 256  # sequences in the batch whose gradient is measured at initialisation
    workers: int = 2


CONFIG = Config()
CLAIMS = _claims(max(CONFIG.depths), min(CONFIG.depths))


@torch.no_grad()
def unigram_loss(train, held_out, vocab: int) -> float:
    """Cross-entropy on held-out labels of the training set's character frequencies (add-one smoothed)."""
    counts = torch.bincount(train.tensors["labels"][train.tensors["labels"] >= 0], minlength=vocab).double() + 1
    logp = (counts / counts.sum()).log()
    labels = held_out.tensors["labels"]
    return float(-logp[labels[labels >= 0]].mean())


def run(residual: bool, n_layers: int, d_model: int, n_heads: int, max_len: int, steps: int, lr: float,
        batch_size: int, n_train: int, grad_batch: int, seed: int) -> dict:
    cpu = time.process_time()
    _, vocab = _arch.corpus()
    model = Transformer(TransformerConfig(arch="decoder", n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                                          d_vocab=vocab, n_ctx=max_len, residual=residual, seed=seed))
    train = _arch.text_windows(n_train, max_len, max_len, 1)
    held_out = _arch.text_windows(512, max_len, max_len, 2, "eval")
    probe_batch = _arch.text_windows(grad_batch, max_len, max_len, 100 + seed, "eval")
    norms = _arch.block_grad_norms(model, _arch.batch_of(probe_batch, grad_batch), BLOCK_WEIGHTS)
    _, diverged = _arch.fit(model, train, None, steps, lr, seed, batch_size, warmup=max(1, steps // 20),
                            schedule="cosine")
    loss = math.log(vocab) if diverged else _arch.loss_and_accuracy(model, held_out)[0]
    return {"grad_first": norms[0], "grad_last": norms[-1], "grad_ratio": norms[0] / norms[-1],
            "grad_norms": " ".join(f"{g:.3g}" for g in norms), "final_loss": loss, "diverged": diverged,
            "unigram_loss": unigram_loss(train, held_out, vocab), "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    shape = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, max_len=cfg.max_len, steps=cfg.steps, lr=cfg.lr,
                 batch_size=cfg.batch_size, n_train=cfg.n_train, grad_batch=cfg.grad_batch)
    variants = [dict(residual=r, n_layers=d, **shape) for d in sorted(cfg.depths, reverse=True) for r in (True, False)]
    table = grid(run, variants, cfg.seeds, desc="residual", workers=cfg.workers)
    summary = {"runs that diverged (scored as a uniform prediction)": int(table["diverged"].sum()),
               "CPU seconds (all workers)": table["cpu_s"].sum()}
    return Outcome(table, summary)


def gain_share(table: pd.DataFrame, depth: int) -> tuple[list[float], list[int]]:
    """Per seed: (unigram - loss without residuals) / (unigram - loss with residuals) at `depth` blocks."""
    gains, seeds, rows = {}, {}, []
    for residual in (False, True):
        unigram, r = column(table, "unigram_loss", residual=residual, n_layers=depth)
        loss, _ = column(table, "final_loss", residual=residual, n_layers=depth)
        seeds[residual] = column(table, "seed", residual=residual, n_layers=depth)[0].tolist()
        gains[residual], rows = unigram - loss, rows + r
    if seeds[False] != seeds[True]:
        raise ValueError(f"gain_share: seeds differ at n_layers={depth}: {seeds}")
    return (gains[False] / gains[True]).tolist(), rows


def verdicts(table: pd.DataFrame) -> list:
    deep, shallow = max(CONFIG.depths), min(CONFIG.depths)
    c = {claim.id: claim for claim in CLAIMS}
    out = []
    for claim_id, residual in ((f"nores_grad_vanishes_{deep}", False), (f"res_grad_reaches_first_{deep}", True)):
        out.append(judge(c[claim_id], *column(table, "grad_ratio", residual=residual, n_layers=deep)))
    out.append(judge(c[f"nores_deep_fails_{deep}"], *gain_share(table, deep)))
    out.append(judge(c[f"nores_shallow_trains_{shallow}"], *gain_share(table, shallow)))
    return out


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for residual, color in ((True, "C0"), (False, "C3")):
        rows = table[table["residual"] == residual].groupby("n_layers")
        label = "residual" if residual else "no residual"
        axes[0].plot(rows["grad_ratio"].mean(), "o-", color=color, label=label)
        axes[1].plot(rows["final_loss"].mean(), "o-", color=color, label=label)
    axes[1].plot(table.groupby("n_layers")["unigram_loss"].mean(), "k--", label="unigram model")
    axes[0].set(xlabel="blocks", ylabel="first / last block gradient norm", yscale="log", title="at initialisation")
    axes[1].set(xlabel="blocks", ylabel="held-out loss (nats)", title="after training")
    for ax in axes:
        ax.legend()
    return _arch.save_figure(fig, out_dir, "residual")


STUDY = Study(
    name="claims.residual",
    title="Residual connections and depth: the gradient at the first block and whether deep stacks train",
    claims=CLAIMS,
    config=CONFIG,
    quick=Config(seeds=(0,), depths=(2, 6, 12), d_model=16, n_heads=2, max_len=8, steps=3, batch_size=8, n_train=64,
                 grad_batch=8, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
