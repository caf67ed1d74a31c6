"""Exposure bias: teacher forcing trains on gold prefixes, decoding runs on the model's own (001 §5.4; Bengio et al.
2015; Mihaylova & Martins 2019).

The seed: in training the decoder's input is the label, at test time its own previous output, so train and test
inputs differ, "and at test time one wrong step can make every later step wrong"; two remedies are named, giving
the decoder some wrong inputs in training, and scheduled sampling.

An encoder-decoder learns to sort a string of symbols (`probe.data.synthetic.seq2seq("sort")`), a task whose next
output follows from the previous one (the smallest symbol not yet written), so a wrong prefix can mislead the
steps after it. Two training methods at the same size, steps and learning rate: teacher forcing, and two-pass
scheduled sampling (`probe.train.scheduled_sampling`) whose probability of feeding the model's own prediction
follows Bengio et al.'s inverse-sigmoid schedule, crossing one half at mid-training. On fresh strings, per output
position: the accuracy of teacher-forced prediction (gold prefix) and of free-running greedy decoding (own prefix).
Their difference at a position is what the model's own earlier outputs cost there; if errors compound it grows
along the output.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from analyses.claims._kit import recipe
from analyses.claims._plot import save
from probe import Trainer, Transformer, TransformerConfig
from probe.data.synthetic import PAD, seq2seq, task_model_fields
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main
from probe.train.scheduled_sampling import ScheduledSampling, inverse_sigmoid, midpoint_k

SOURCE = "001 §5.4"
CLAIMS = (
    Claim("free_running_worse", "Decoding from its own outputs is worse than from gold prefixes (teacher forcing "
          "makes train and test inputs differ)", SOURCE,
          "teacher-forced - free-running token accuracy, mean over positions, teacher-forced training", ">", 0.0),
    Claim("errors_compound", "Errors compound: what the model's own prefix costs grows along the output", SOURCE,
          "slope over output position of (teacher-forced - free-running accuracy), teacher-forced training", ">",
          0.0),
    Claim("ss_narrows_gap", "Scheduled sampling narrows the gap between teacher-forced and free-running accuracy",
          f"{SOURCE}; Bengio et al. 2015; Mihaylova & Martins 2019",
          "gap(teacher forcing) - gap(scheduled sampling), gap = mean teacher-forced - free-running accuracy", ">",
          0.0),
    Claim("ss_helps_free_running", "Scheduled sampling improves free-running decoding",
          f"{SOURCE}; Bengio et al. 2015; Mihaylova & Martins 2019",
          "free-running token accuracy, scheduled sampling - teacher forcing", ">", 0.0),
)
METHODS = ("teacher_forcing", "scheduled_sampling")


@dataclass(frozen=True)
class Config:
    task: str = "sort"
    n_symbols: int = 10
    length: int = 10  # every source string has this many symbols; outputs are length + 1 with eos
    d_model: int = 64
    n_layers: int = 2  # encoder layers; the decoder has as many
    n_heads: int = 4
    steps: int = 800
    batch_size: int = 64
    lr: float = 1e-3  # _kit.recipe (AdamW, warmup, cosine decay); the same for both methods
    n_train: int = 20_000
    n_eval: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # five: the effects under test are small next to seed noise
    workers: int = 2


@functools.lru_cache(maxsize=2)
def _data(cfg: Config) -> tuple:
    make = functools.partial(seq2seq, cfg.task, n_symbols=cfg.n_symbols, min_len=cfg.length, max_len=cfg.length)
    return make(cfg.n_train, seed=10_000), make(cfg.n_eval, seed=20_000)[:]


@torch.no_grad()
def accuracy_by_position(model: Transformer, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per output position: accuracy of teacher-forced prediction and of free-running greedy decoding, over the
    scored positions (labels != -100)."""
    model.eval()
    src, mask, tgt, labels = batch["src"], batch["src_mask"], batch["tgt"], batch["labels"]
    forced = model(src=src, tgt=tgt, src_mask=mask).argmax(-1)
    width = labels.shape[1]
    free = model.generate(src, max_new_tokens=width, src_mask=mask)[:, 1:]
    free = F.pad(free, (0, width - free.shape[1]), value=PAD)[:, :width]  # decoding stops once every row ended
    scored = (labels != -100).float()
    per_position = scored.sum(0).clamp_min(1)
    return (((forced == labels).float() * scored).sum(0) / per_position).numpy(), \
        (((free == labels).float() * scored).sum(0) / per_position).numpy()


def run_one(method: str, seed: int, cfg: Config) -> list[dict]:
    cpu = time.process_time()
    train, fresh = _data(cfg)
    fields = task_model_fields(cfg.task, n_symbols=cfg.n_symbols, max_len=cfg.length)
    model = Transformer(TransformerConfig(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, seed=seed,
                                          **fields))
    tc = recipe(cfg, seed)
    if method == "scheduled_sampling":
        wrapper = ScheduledSampling(model, inverse_sigmoid(midpoint_k(cfg.steps / 2)))
        Trainer(wrapper, train, None, tc, callbacks=[wrapper]).fit()
    else:
        Trainer(model, train, None, tc).fit()
    forced, free = accuracy_by_position(model, fresh)
    cpu = time.process_time() - cpu
    return [{"position": t, "forced_acc": float(forced[t]), "free_acc": float(free[t]), "cpu_s": cpu / len(forced)}
            for t in range(len(forced))]


def experiment(cfg: Config) -> Outcome:
    table = grid(functools.partial(run_one, cfg=cfg), [{"method": m} for m in METHODS], cfg.seeds,
                 desc="exposure_bias", workers=cfg.workers)
    return Outcome(table, {"CPU seconds, all runs": float(table["cpu_s"].sum())})


def per_run(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, seed): mean forced and free accuracy, mean gap, least-squares slope of the gap over
    position, and the table rows it summarises."""
    out = []
    for (method, seed), g in table.groupby(["method", "seed"]):
        gap = (g["forced_acc"] - g["free_acc"]).to_numpy()
        position = g["position"].to_numpy(float)
        slope = float(np.polyfit(position, gap, 1)[0]) if len(g) > 1 else 0.0
        out.append({"method": method, "seed": seed, "forced_acc": g["forced_acc"].mean(),
                    "free_acc": g["free_acc"].mean(), "gap": gap.mean(), "slope": slope, "rows": list(g.index)})
    return pd.DataFrame(out)


def _pair(runs: pd.DataFrame, metric: str, a: str, b: str) -> tuple[np.ndarray, list[int]]:
    ra, rb = (runs[runs["method"] == m].set_index("seed") for m in (a, b))
    seeds = sorted(set(ra.index) & set(rb.index))
    if not seeds:
        raise ValueError(f"no seed has runs of both {a!r} and {b!r}")
    rows = [r for s in seeds for r in ra.loc[s, "rows"] + rb.loc[s, "rows"]]
    return ra.loc[seeds, metric].to_numpy(float) - rb.loc[seeds, metric].to_numpy(float), rows


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    runs = per_run(table)
    forced = runs[runs["method"] == "teacher_forcing"].sort_values("seed")
    if forced.empty:
        raise ValueError("no teacher-forcing runs in the table")
    rows = [r for rs in forced["rows"] for r in rs]
    return [judge(c["free_running_worse"], forced["gap"].to_numpy(float), rows),
            judge(c["errors_compound"], forced["slope"].to_numpy(float), rows),
            judge(c["ss_narrows_gap"], *_pair(runs, "gap", "teacher_forcing", "scheduled_sampling")),
            judge(c["ss_helps_free_running"], *_pair(runs, "free_acc", "scheduled_sampling", "teacher_forcing"))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, method in enumerate(METHODS):
        g = t[t["method"] == method].groupby("position")[["forced_acc", "free_acc"]].mean()
        axes[0].plot(g.index, g["forced_acc"], "-", color=f"C{k}", label=f"{method}: gold prefix")
        axes[0].plot(g.index, g["free_acc"], "--", color=f"C{k}", label=f"{method}: own prefix")
        axes[1].plot(g.index, g["forced_acc"] - g["free_acc"], "o-", color=f"C{k}", label=method)
    axes[0].set(xlabel="output position", ylabel="token accuracy", title="Accuracy by position (mean over seeds)")
    axes[0].legend(fontsize=7)
    axes[1].axhline(0, color="gray", lw=0.8)
    axes[1].set(xlabel="output position", ylabel="gold-prefix - own-prefix accuracy", title="What own prefixes cost")
    axes[1].legend(fontsize=8)
    return save(fig, out / "exposure_bias.png")


STUDY = Study(
    name="claims.exposure_bias",
    title="Exposure bias: teacher forcing vs free running, and scheduled sampling",
    claims=CLAIMS,
    config=Config(),
    quick=Config(length=5, d_model=16, n_layers=1, n_heads=2, steps=10, n_train=256, n_eval=64, seeds=(0,),
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
