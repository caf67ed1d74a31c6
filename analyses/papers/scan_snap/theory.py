"""The theorems of Scan and Snap (Tian et al. 2023, arXiv 2305.16380) against measured runs of the reparameterised
model on the Figure-4 data (two query tokens, one next token each, zero init), over a grid of eta_Y at fixed eta_Z.

- Theorem 2 (scan): z_{m,l} rises for the distinct tokens of n and falls for the common tokens. Measured as the
  fraction of distinct (common) tokens whose z rose (fell) from init to the last iteration, with the reference's
  optimiser (SGD, momentum 0.9).
- Theorem 3 (relative gain): for distinct tokens l, l' of n, r_{l/l'|n}(t) := (c_{l|n}/c_{l'|n})^2 - 1 equals
  r(0) exp(2 (z_{m,l}(t) - z_{m,l}(0))). Both sides are measured; the theorem assumes the decoder at its fast
  equilibrium and infinitely long sequences, so it is judged as an approximation: median relative error below 10%.
- Theorem 4 (snap): the attention stops changing after t0 ~ 2 K ln M / eta_Y (K next tokens per query, M the
  vocabulary). The snap step is the first step after the peak of the attention's speed |c(t+1) - c(t)|_1 at which
  the speed falls below a tenth of its peak; the theorem predicts a log-log slope of -1 against eta_Y. It is stated
  for plain SGD, so it is judged on runs without momentum (the runs with momentum 0.9, whose effective step is
  eta / (1 - momentum), are in the table and the figure). The direction claim asks for a negative slope; the
  magnitude claim for a slope at least half as steep as predicted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analyses.papers.scan_snap._common import FIG4_DATA, SOURCE, class_c, device, snap_index, speed
from probe.data.scan_snap import ScanSnapData
from probe.study import Claim, Outcome, Study, judge, main, per_seed, select
from probe.train.scan_snap_sweep import RunSpec, sweep

CLAIMS = (
    Claim("distinct_rise", "Scan: z_(m,l) rises for the distinct tokens of each class", f"{SOURCE}, Theorem 2",
          "fraction of distinct tokens whose z rose from init to the last iteration (momentum 0.9, mean over "
          "eta_Y)", ">=", 0.8),
    Claim("common_fall", "Scan: z_(m,l) falls for the common tokens", f"{SOURCE}, Theorem 2",
          "fraction of common tokens whose z fell from init to the last iteration (momentum 0.9, mean over eta_Y)",
          ">=", 0.9),
    Claim("relative_gain", "The relative gain of two distinct tokens follows r(t) = r(0) exp(2 (z(t) - z(0)))",
          f"{SOURCE}, Theorem 3",
          "median over eta_Y of each run's median relative error |r_measured - r_predicted| / |r_predicted| over "
          "token pairs and iterations >= 1 (momentum 0.9)", "<", 0.1),
    Claim("snap_direction", "Snap: a larger eta_Y snaps earlier", f"{SOURCE}, Theorem 4",
          "log-log slope of the snap step against eta_Y (plain SGD)", "<", 0.0),
    Claim("snap_magnitude", "Snap: the snap step scales as 1 / eta_Y (t0 ~ 2 K ln M / eta_Y)", f"{SOURCE}, Theorem 4",
          "log-log slope of the snap step against eta_Y (plain SGD; the theorem: -1)", "<=", -0.5),
)
SNAP_FRAC = 0.1


@dataclass(frozen=True)
class Config:
    eta_y: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    eta_z: float = 1.0
    momenta: tuple[float, ...] = (0.9, 0.0)  # 0.9: the authors' optimiser (Theorems 2, 3); 0.0: Theorem 4's SGD
    iters: int = 100
    batch: int = 128
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)


def sign_fractions(Z0: torch.Tensor, Z1: torch.Tensor, data: ScanSnapData) -> tuple[float, float]:
    """(fraction of distinct tokens whose z rose, fraction of common tokens whose z fell) in the query rows."""
    dz = (Z1 - Z0)[data.query]  # [F, M]: row m = psi(n) of each class
    return float((dz[data.mask("distinct")] > 0).float().mean()), float((dz[data.mask("common")] < 0).float().mean())


def relative_gain(Zh: torch.Tensor, data: ScanSnapData) -> tuple[torch.Tensor, torch.Tensor]:
    """Measured and predicted r_{l/l'|n}(t) for pairs of distinct tokens with P(l|n) > P(l'|n): [steps, pairs]."""
    c = class_c(Zh, data)  # [steps, F, M]
    z = Zh[:, data.query]  # [steps, F, M]
    meas, pred = [], []
    for f in range(data.num_classes):
        d = data.distinct[f]
        p = data.cond_prob()[f, d]
        for i in range(len(d)):
            for j in range(len(d)):
                if p[i] > p[j]:
                    r_t = (c[:, f, d[i]] / c[:, f, d[j]]) ** 2 - 1
                    meas.append(r_t)
                    pred.append(r_t[0] * torch.exp(2 * (z[:, f, d[i]] - z[0, f, d[i]])))
    return torch.stack(meas, 1), torch.stack(pred, 1)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x (y clamped to >= 1: a snap at step 0 counts as step 1)."""
    return float(np.polyfit(np.log(x), np.log(np.maximum(y, 1.0)), 1)[0])


def experiment(cfg: Config) -> Outcome:
    if len(cfg.eta_y) < 2:
        raise ValueError(f"eta_y={cfg.eta_y} needs at least two learning rates for a slope")
    data = ScanSnapData(FIG4_DATA, device())
    K, M = FIG4_DATA.num_next_per_last, FIG4_DATA.d_vocab
    rows, curves = [], {}
    for mu in cfg.momenta:
        variants = [(e, s) for e in cfg.eta_y for s in cfg.seeds]
        specs = [RunSpec(FIG4_DATA.replace(seed=s), cfg.eta_z, e) for e, s in variants]
        res = sweep(specs, cfg.iters, cfg.batch, momentum=mu, record_every=1, device=device())
        v = speed(class_c(res.Z_history, data))  # [steps - 1, runs]
        for r, (eta_y, seed) in enumerate(variants):
            Zh = res.Z_history[:, r]
            up, down = sign_fractions(Zh[0], Zh[-1], data)
            meas, pred = relative_gain(Zh, data)
            err = ((meas - pred).abs() / pred.abs())[1:]  # t >= 1
            rows.append({"momentum": mu, "eta_y": eta_y, "seed": seed, "distinct_up": up, "common_down": down,
                         "rel_err": float(err.median()), "rel_err_first10": float(err[:10].median()),
                         "snap_step": snap_index(v[:, r], SNAP_FRAC),
                         "predicted_t0": 2 * K * math.log(M) / (eta_y / (1 - mu))})
        curves[mu] = tuple(x.cpu().numpy() for x in relative_gain(res.Z_history[:, 0], data))
    return Outcome(pd.DataFrame(rows), summary={"K (next tokens per query)": K, "M (vocabulary)": M,
                                                "snap: speed below this fraction of its peak": SNAP_FRAC},
                   artifacts={"relative_gain": curves})


def slopes(table: pd.DataFrame, momentum: float) -> tuple[list[float], list[int]]:
    """Per seed, the log-log slope of the snap step against eta_Y at `momentum`."""
    rows = select(table, momentum=momentum)
    by_seed = rows.groupby("seed")
    values = [loglog_slope(g["eta_y"].to_numpy(), g["snap_step"].to_numpy()) for _, g in by_seed]
    return values, [int(i) for i in rows.index]


def verdicts(table: pd.DataFrame) -> list:
    slope = slopes(table, 0.0)
    return [judge(CLAIMS[0], *per_seed(table, "distinct_up", "mean", momentum=0.9)),
            judge(CLAIMS[1], *per_seed(table, "common_down", "mean", momentum=0.9)),
            judge(CLAIMS[2], *per_seed(table, "rel_err", "median", momentum=0.9)),
            judge(CLAIMS[3], *slope), judge(CLAIMS[4], *slope)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for mu, g in t.groupby("momentum"):
        m = g.groupby("eta_y")[["snap_step", "predicted_t0"]].mean()
        axes[0].loglog(m["predicted_t0"], m["snap_step"].clip(lower=0.5), "o-", label=f"momentum {mu:g}")
    lim = [0.05, float(t["predicted_t0"].max()) * 2]
    axes[0].loglog(lim, lim, "k--", linewidth=0.7, label="measured = predicted")
    axes[0].set(xlabel="predicted t0 = 2 K ln M / eta_Y,eff", ylabel="measured snap step (mean over seeds)")
    axes[0].legend(fontsize=7)
    meas, pred = outcome.artifacts["relative_gain"][0.9] if 0.9 in outcome.artifacts["relative_gain"] else next(
        iter(outcome.artifacts["relative_gain"].values()))
    every = max(1, meas.shape[1] // 6)
    axes[1].plot(meas[:, ::every], "-")
    axes[1].plot(pred[:, ::every], "--", color="k", linewidth=0.6)
    axes[1].set(xlabel="iteration", ylabel="r_(l/l'|n): measured (colour), Thm 3 (dashed)",
                title="a few token pairs of the first run")
    fig.tight_layout()
    path = out / "theory.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.theory", title="Scan and Snap: Theorems 2, 3 and 4 against measured runs",
    claims=CLAIMS, config=Config(), quick=Config(eta_y=(1.0, 10.0), iters=20, batch=32, seeds=(1,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
