"""LayerNorm, not BatchNorm, for sequences of varying length; RMSNorm as good and cheaper.

Seed 001 §15.3 says Transformers use LayerNorm rather than BatchNorm because sentences have different lengths and
BatchNorm, which normalises each feature over the batch, becomes unstable with them; 003 #12-13 adds that BatchNorm
depends on the batch and suits neither small batches nor sequence models. Seed 002 (its Gopher paragraph, Rae et al.
2021) says RMSNorm, used instead of LayerNorm, does as well and is cheaper.

The same 2-block pre-norm character-level language model is trained with LayerNorm, BatchNorm, RMSNorm and no
normalisation on padded batches of windows of mixed lengths (same steps, learning rate, batches and seeds). probe's
BatchNorm leaves padded positions out of its statistics (a naive BatchNorm1d over every position would also
normalise with the padding); in evaluation mode it uses running statistics. After training, on held-out text:
- dependence on batch-mates: one sequence's logits in two batches that differ only in its 31 batch-mates (relative
  change, training mode);
- dependence on the lengths of the batch: the same batch with its batch-mates cut to half their length (more
  padding), the sequence itself unchanged;
- dependence on padding as such: the same batch with extra padding columns appended (reported, not a claim: the
  padding-aware BatchNorm is built to ignore it);
- the gap between the held-out loss computed with batch statistics (training mode) and with running statistics
  (evaluation mode);
- the final held-out loss (evaluation mode) and the time of one training step and of the normalisation op alone,
  LayerNorm and RMSNorm interleaved in one process.
In a causal decoder, BatchNorm's training-mode statistics mix positions, including later ones, across the batch:
a small leak of the future that evaluation mode does not have.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main, paired

SOURCE_BN = "001 §15.3; 003 #12-13"
SOURCE_RMS = "002 (Gopher paragraph); Rae et al. 2021, Zhang & Sennrich 2019"
NORMS = ("LN", "BN", "RMS", "none")
EXACT = 1e-5  # relative change treated as zero (float32 round-off)

CLAIMS = (
    Claim("bn_depends_on_batch", "In training mode, a sequence's BatchNorm output changes when its batch-mates change",
          SOURCE_BN, "relative change of one sequence's logits between two batches with other batch-mates (BN, "
          "training mode)", ">", 1e-3),
    Claim("bn_depends_on_lengths", "In training mode, a sequence's BatchNorm output changes when its batch-mates "
          "are shorter (more padding)", SOURCE_BN, "relative change of one sequence's logits when its batch-mates "
          "are cut to half their length (BN, training mode)", ">", 1e-3),
    Claim("ln_rms_independent", "LayerNorm's and RMSNorm's outputs for a sequence do not depend on its batch, its "
          "batch-mates' lengths or padding", SOURCE_BN, "largest relative change of one sequence's logits over "
          "the three perturbations, LN and RMS", "<", EXACT),
    Claim("bn_train_eval_gap", "BatchNorm behaves differently in training and evaluation mode", SOURCE_BN,
          "|held-out loss with running statistics - with batch statistics| (BN, nats)", ">", 0.01),
    Claim("bn_worse_than_ln", "On mixed-length padded batches, BatchNorm trains worse than LayerNorm", SOURCE_BN,
          "held-out loss BN - LN (nats, evaluation mode)", ">", 0.0),
    Claim("rms_matches_ln", "RMSNorm trains as well as LayerNorm", SOURCE_RMS,
          "held-out loss RMS - LN (nats)", "<", 0.05),
    Claim("rms_op_cheaper", "The RMSNorm operation is cheaper than LayerNorm", SOURCE_RMS,
          "time of F.rms_norm / F.layer_norm on the same activations", "<", 1.0),
    Claim("rms_step_cheaper", "A training step with RMSNorm is cheaper than with LayerNorm", SOURCE_RMS,
          "time of a forward + backward step, RMS / LN", "<", 1.0),
)


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    min_len: int = 8
    max_len: int = 32
    steps: int = 600
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    timing_repeats: int = 30
    workers: int = 2


def _model(norm: str, cfg_kw: dict, seed: int) -> Transformer:
    _, vocab = _arch.corpus()
    return Transformer(TransformerConfig(arch="decoder", d_vocab=vocab, normalization_type=None if norm == "none"
                                         else norm, seed=seed, **cfg_kw))


def _logits_of_first(model: Transformer, batch: dict) -> torch.Tensor:
    """Logits of the batch's first sequence at its real positions."""
    logits = model(batch["tokens"], attention_mask=batch["attention_mask"])
    return logits[0, batch["attention_mask"][0].bool()]


@torch.no_grad()
def dependence(model: Transformer, data, batch_size: int, train_mode: bool) -> dict[str, float]:
    """Relative change of the first sequence's logits when (a) its batch-mates change, (b) its batch-mates are cut
    to half their length, (c) padding columns are appended. A copy of the model runs, so BatchNorm's running
    statistics are left as they were."""
    m = copy.deepcopy(model).train(train_mode)
    mates = slice(1, batch_size)
    base = _arch.batch_of(data, batch_size)
    other = _arch.batch_of(data, batch_size, batch_size)
    swapped = {k: torch.cat([base[k][:1], other[k][mates]]) for k in ("tokens", "attention_mask")}
    shorter = {k: v.clone() for k, v in base.items()}
    lengths = shorter["attention_mask"].sum(1)
    keep = torch.arange(shorter["tokens"].shape[1])[None] < (lengths // 2).clamp(min=2)[:, None]
    keep[0] = shorter["attention_mask"][0].bool()  # the sequence under test keeps its length
    shorter["attention_mask"] = (shorter["attention_mask"].bool() & keep).long()
    shorter["tokens"] = shorter["tokens"].masked_fill(~shorter["attention_mask"].bool(), _arch.PAD)
    extra = base["tokens"].shape[1] // 2
    padded = {"tokens": F.pad(base["tokens"], (0, extra), value=_arch.PAD),
              "attention_mask": F.pad(base["attention_mask"], (0, extra), value=0)}
    ref = _logits_of_first(m, base)

    def rel(batch: dict) -> float:
        return float((_logits_of_first(m, batch) - ref).norm() / ref.norm())

    return {"batch": rel(swapped), "lengths": rel(shorter), "padding": rel(padded)}


@torch.no_grad()
def held_out_loss(model: Transformer, data, batch_size: int, n_batches: int, train_mode: bool) -> float:
    """Mean held-out loss over `n_batches` batches, with batch statistics (training mode) or running ones."""
    m = copy.deepcopy(model).train(train_mode)
    losses = [float(m(**_arch.batch_of(data, batch_size, i * batch_size), return_type="loss"))
              for i in range(n_batches)]
    return sum(losses) / len(losses)


def train_run(norm: str, steps: int, lr: float, batch_size: int, n_train: int, min_len: int, max_len: int,
              cfg_kw: dict, seed: int) -> dict:
    cpu = time.process_time()
    model = _model(norm, cfg_kw, seed)
    train = _arch.text_windows(n_train, min_len, max_len, 1)
    held_out = _arch.text_windows(4 * batch_size, min_len, max_len, 2, "eval")
    _, diverged = _arch.fit(model, train, None, steps, lr, seed, batch_size, warmup=max(1, steps // 20),
                            schedule="cosine")
    if diverged:
        raise RuntimeError(f"norm={norm} seed={seed}: the loss became non-finite; this study has no rule for it")
    dep = dependence(model, held_out, batch_size, train_mode=True)
    dep_eval = dependence(model, held_out, batch_size, train_mode=False)
    loss_eval = held_out_loss(model, held_out, batch_size, 4, train_mode=False)
    loss_train = held_out_loss(model, held_out, batch_size, 4, train_mode=True)
    return {"final_loss": loss_eval, "loss_batch_stats": loss_train, "train_eval_gap": abs(loss_eval - loss_train),
            "dep_batch": dep["batch"], "dep_lengths": dep["lengths"], "dep_padding": dep["padding"],
            "dep_batch_eval_mode": dep_eval["batch"], "cpu_s": time.process_time() - cpu}


def timing_run(batch_size: int, min_len: int, max_len: int, repeats: int, cfg_kw: dict, seed: int) -> list[dict]:
    """Interleaved timings: a training step of LN / RMS / BN / no-norm models, and the LN and RMS ops alone."""
    cpu = time.process_time()
    batch = _arch.batch_of(_arch.text_windows(batch_size, min_len, max_len, 3, "eval"), batch_size)
    models = [_model(norm, cfg_kw, seed) for norm in NORMS]
    steps = _arch.step_times(models, batch, repeats)
    x = torch.randn(batch_size, max_len, cfg_kw["d_model"], generator=torch.Generator().manual_seed(seed))
    w, b = torch.ones(x.shape[-1]), torch.zeros(x.shape[-1])
    ops = _op_times([lambda: F.layer_norm(x, x.shape[-1:], w, b), lambda: F.rms_norm(x, x.shape[-1:], w)],
                    50 * repeats)
    cpu = (time.process_time() - cpu) / len(NORMS)
    rows = [{"norm": n, "step_s": s, "cpu_s": cpu} for n, s in zip(NORMS, steps)]
    rows[0]["op_s"], rows[2]["op_s"] = ops
    return rows


def _op_times(fns, repeats: int) -> list[float]:
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats + 5):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            if r >= 5:
                times[i].append(time.perf_counter() - start)
    return [float(torch.tensor(t).median()) for t in times]


def run(part: str, **kw) -> dict | list[dict]:
    return train_run(**kw) if part == "train" else timing_run(**kw)


def experiment(cfg: Config) -> Outcome:
    cfg_kw = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, n_ctx=cfg.max_len * 2)
    data = dict(batch_size=cfg.batch_size, min_len=cfg.min_len, max_len=cfg.max_len, cfg_kw=cfg_kw)
    jobs = [dict(part="train", norm=n, steps=cfg.steps, lr=cfg.lr, n_train=cfg.n_train, **data) for n in NORMS]
    jobs.append(dict(part="timing", repeats=cfg.timing_repeats, **data))
    table = grid(run, jobs, cfg.seeds, desc="norms", workers=cfg.workers).drop(columns=["cfg_kw"])
    train = table[table["part"] == "train"]
    summary = {f"held-out loss, {n} (mean over seeds)": train[train["norm"] == n]["final_loss"].mean()
               for n in NORMS}
    summary["largest relative change from extra padding, BN (training mode)"] = train[
        train["norm"] == "BN"]["dep_padding"].max()
    summary["largest relative change between batches, BN (evaluation mode)"] = train[
        train["norm"] == "BN"]["dep_batch_eval_mode"].max()
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    train, timing = table[table["part"] == "train"], table[table["part"] == "timing"]
    c = {claim.id: claim for claim in CLAIMS}
    out = [judge(c["bn_depends_on_batch"], *column(train, "dep_batch", norm="BN")),
           judge(c["bn_depends_on_lengths"], *column(train, "dep_lengths", norm="BN"))]
    worst, rows = [], []
    for norm in ("LN", "RMS"):
        sub = train[train["norm"] == norm].sort_values("seed")
        worst.append(sub[["dep_batch", "dep_lengths", "dep_padding"]].max(axis=1).to_numpy())
        rows += [int(i) for i in sub.index]
    out.append(judge(c["ln_rms_independent"], [max(a, b) for a, b in zip(*worst)], rows, method="exact"))
    out.append(judge(c["bn_train_eval_gap"], *column(train, "train_eval_gap", norm="BN")))
    out.append(judge(c["bn_worse_than_ln"], *paired(train, "final_loss", {"norm": "BN"}, {"norm": "LN"})))
    out.append(judge(c["rms_matches_ln"], *paired(train, "final_loss", {"norm": "RMS"}, {"norm": "LN"})))
    out.append(judge(c["rms_op_cheaper"], *paired(timing, "op_s", {"norm": "RMS"}, {"norm": "LN"}, how="ratio")))
    out.append(judge(c["rms_step_cheaper"], *paired(timing, "step_s", {"norm": "RMS"}, {"norm": "LN"},
                                                    how="ratio")))
    return out


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    train = table[table["part"] == "train"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    means = train.groupby("norm")[["dep_batch", "dep_lengths", "dep_padding"]].mean().reindex(list(NORMS))
    floor = 1e-9  # zero changes drawn at the floor of the log scale
    for i, col in enumerate(means.columns):
        axes[0].bar([j + 0.27 * (i - 1) for j in range(len(NORMS))], means[col].clip(lower=floor), width=0.27,
                    label=col.removeprefix("dep_"))
    axes[0].set_xticks(range(len(NORMS)), NORMS)
    axes[0].set(yscale="log", title="relative change of a sequence's logits (training mode)", ylabel="relative change")
    axes[0].legend(title="perturbation", fontsize=8)
    loss = train.groupby("norm")["final_loss"].agg(["mean", "std"]).reindex(list(NORMS))
    axes[1].bar(range(len(NORMS)), loss["mean"], yerr=loss["std"].fillna(0), color="C2")
    axes[1].set_xticks(range(len(NORMS)), NORMS)
    axes[1].set(title="held-out loss (evaluation mode)", ylabel="nats", ylim=(loss["mean"].min() * 0.9, None))
    return _arch.save_figure(fig, out_dir, "norms")


STUDY = Study(
    name="claims.norms",
    title="LayerNorm vs BatchNorm vs RMSNorm on sequences of mixed lengths",
    claims=CLAIMS,
    config=Config(),
    quick=Config(seeds=(0,), n_layers=1, d_model=16, n_heads=2, min_len=4, max_len=8, steps=5, batch_size=8,
                 n_train=64, timing_repeats=2, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
