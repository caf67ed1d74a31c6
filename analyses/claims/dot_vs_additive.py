"""Dot-product attention, not additive attention.

Seed 001 §11.1 says self-attention is usually dot-product or additive, and the dot product is more efficient; 003 #3
says the dot product costs about as much as the additive form but captures similarity better. Vaswani et al. 2017
(sec. 3.2.1 and footnote 4), which both lean on, say the two are similar in theory, the dot product is much faster
in practice, additive attention beats unscaled dot products at large d_k, and scaling by 1/sqrt(d_k) closes that gap.

2-block decoders on associative recall with the attention kind as the only change: scaled dot product, unscaled dot
product, and additive (Bahdanau) scores w . tanh(q_i + k_j) (`attention="additive"`), each at a small and a large
d_head with d_model fixed; the same steps, learning rate, batches and seeds. Measured: held-out accuracy of the
recalled value, and the time of a training step (forward and backward), dot product and additive interleaved in one
process on the same batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, grid, judge, main, paired

SOURCE = "001 §11.1; 003 #3; Vaswani et al. 2017 sec. 3.2.1, footnote 4"
KEYS, VALUES, PAIRS = 8, 8, 4
KINDS = {"dot": dict(use_attn_scale=True), "dot_unscaled": dict(use_attn_scale=False),
         "additive": dict(attention="additive", use_attn_scale=False)}


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    d_heads: tuple[int, int] = (8, 128)
    d_model: int = 64
    n_heads: int = 2
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    timing_repeats: int = 20
    workers: int = 2


CONFIG = Config()
SMALL, LARGE = CONFIG.d_heads


def _claims() -> tuple[Claim, ...]:
    out = []
    for d in (SMALL, LARGE):
        out.append(Claim(f"similar_accuracy_{d}", f"Additive and dot-product attention reach similar accuracy "
                         f"(d_head {d})", SOURCE, f"|held-out accuracy, additive - scaled dot product|, d_head {d}",
                         "<", 0.05))
        out.append(Claim(f"dot_faster_{d}", f"Dot-product attention is faster than additive (d_head {d})", SOURCE,
                         f"training-step time, additive / dot product, d_head {d}", ">", 1.0))
    out.append(Claim(f"additive_beats_unscaled_{LARGE}", f"Additive attention beats unscaled dot products at large "
                     f"d_k (d_head {LARGE})", SOURCE, f"held-out accuracy, additive - unscaled dot product, d_head "
                     f"{LARGE}", ">", 0.0))
    return tuple(out)


CLAIMS = _claims()


def _model(kind: str, d_head: int, d_model: int, n_heads: int, seed: int) -> Transformer:
    return Transformer(TransformerConfig(arch="decoder", n_layers=2, d_model=d_model, n_heads=n_heads, d_head=d_head,
                                         d_vocab=3 + KEYS + VALUES, n_ctx=2 * PAIRS + 1, seed=seed, **KINDS[kind]))


def train_run(kind: str, d_head: int, d_model: int, n_heads: int, steps: int, lr: float, batch_size: int,
              n_train: int, seed: int) -> dict:
    cpu = time.process_time()
    model = _model(kind, d_head, d_model, n_heads, seed)
    _, diverged = _arch.fit(model, _arch.recall(n_train, KEYS, VALUES, PAIRS, 1), None, steps, lr, seed, batch_size,
                            warmup=max(1, steps // 20), schedule="cosine")
    if diverged:
        raise RuntimeError(f"kind={kind} d_head={d_head} seed={seed}: the loss became non-finite")
    loss, acc = _arch.loss_and_accuracy(model, _arch.recall(1024, KEYS, VALUES, PAIRS, 2), 1024)
    return {"final_loss": loss, "accuracy": acc, "cpu_s": time.process_time() - cpu}


def timing_run(d_head: int, d_model: int, n_heads: int, batch_size: int, repeats: int, seed: int) -> list[dict]:
    cpu = time.process_time()
    kinds = ("dot", "additive")
    batch = _arch.batch_of(_arch.recall(batch_size, KEYS, VALUES, PAIRS, 3), batch_size)
    times = _arch.step_times([_model(k, d_head, d_model, n_heads, seed) for k in kinds], batch, repeats)
    cpu = (time.process_time() - cpu) / len(kinds)
    return [{"kind": k, "step_s": t, "cpu_s": cpu} for k, t in zip(kinds, times)]


def run(part: str, **kw) -> dict | list[dict]:
    return train_run(**kw) if part == "train" else timing_run(**kw)


def experiment(cfg: Config) -> Outcome:
    shape = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, batch_size=cfg.batch_size)
    jobs = [dict(part="train", kind=k, d_head=d, steps=cfg.steps, lr=cfg.lr, n_train=cfg.n_train, **shape)
            for d in sorted(cfg.d_heads, reverse=True) for k in KINDS]
    jobs += [dict(part="timing", d_head=d, repeats=cfg.timing_repeats, **shape) for d in cfg.d_heads]
    table = grid(run, jobs, cfg.seeds, desc="dot_vs_additive", workers=cfg.workers)
    train = table[table["part"] == "train"]
    summary = {f"held-out accuracy, {k}, d_head {d} (mean over seeds)":
               train[(train["kind"] == k) & (train["d_head"] == d)]["accuracy"].mean()
               for d in cfg.d_heads for k in KINDS}
    summary["chance accuracy"] = 1 / VALUES
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    train, timing = table[table["part"] == "train"], table[table["part"] == "timing"]
    c = {claim.id: claim for claim in CLAIMS}
    out = []
    for d in (SMALL, LARGE):
        diff, rows = paired(train, "accuracy", {"kind": "additive", "d_head": d}, {"kind": "dot", "d_head": d})
        out.append(judge(c[f"similar_accuracy_{d}"], abs(diff), rows))
        out.append(judge(c[f"dot_faster_{d}"], *paired(timing, "step_s", {"kind": "additive", "d_head": d},
                                                       {"kind": "dot", "d_head": d}, how="ratio")))
    out.append(judge(c[f"additive_beats_unscaled_{LARGE}"],
                     *paired(train, "accuracy", {"kind": "additive", "d_head": LARGE},
                             {"kind": "dot_unscaled", "d_head": LARGE})))
    return out


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    train, timing = table[table["part"] == "train"], table[table["part"] == "timing"]
    d_heads = sorted(train["d_head"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, kind in enumerate(KINDS):
        acc = [train[(train["kind"] == kind) & (train["d_head"] == d)]["accuracy"].mean() for d in d_heads]
        axes[0].bar([j + 0.27 * (i - 1) for j in range(len(d_heads))], acc, width=0.27, label=kind)
    for i, kind in enumerate(("dot", "additive")):
        ms = [1e3 * timing[(timing["kind"] == kind) & (timing["d_head"] == d)]["step_s"].mean() for d in d_heads]
        axes[1].bar([j + 0.4 * (i - 0.5) for j in range(len(d_heads))], ms, width=0.4, label=kind)
    axes[0].set(ylabel="held-out accuracy", ylim=(0, 1.02), title="associative recall")
    axes[1].set(ylabel="ms per training step", title="forward + backward")
    for ax in axes:
        ax.set_xticks(range(len(d_heads)), [f"d_head {d}" for d in d_heads])
        ax.legend()
    return _arch.save_figure(fig, out_dir, "dot_vs_additive")


STUDY = Study(
    name="claims.dot_vs_additive",
    title="Dot-product vs additive attention: accuracy, speed, and the unscaled dot product at large d_head",
    claims=CLAIMS,
    config=CONFIG,
    quick=Config(seeds=(0,), d_model=16, steps=5, batch_size=8, n_train=64, timing_repeats=2, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
