"""Figure 6 of Scan and Snap (Tian et al. 2023, arXiv 2305.16380): the final entropy of c_{l|n} over each class's
distinct tokens against eta_Y/eta_Z, for several eta_Z and numbers of query tokens (two next tokens per query), from
PyTorch's default init, with SGD (momentum 0.9) on sequences of 128 tokens. The whole grid (num_last x eta_Z x ratio x
seeds) runs as one batched program (`probe.train.scan_snap_sweep`). Each claim is a direction that should hold across
the grid: the per-seed quantity is the fraction of the grid's series in which it holds, comparing the largest with
the smallest value of the varied rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analyses.papers.scan_snap._common import SOURCE, class_c, device
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import distinct_entropy
from probe.models.scan_snap_config import ScanSnapConfig
from probe.study import Claim, Outcome, Study, judge, main
from probe.train.scan_snap_sweep import RunSpec, sweep

CLAIMS = (
    Claim("ratio_denser", "At fixed eta_Z, a larger eta_Y/eta_Z gives a denser (higher-entropy) final attention",
          f"{SOURCE}, Figure 6",
          "fraction of the (num_last, eta_Z) series whose final distinct-token entropy is higher at the largest "
          "eta_Y/eta_Z than at the smallest", ">=", 0.75),
    Claim("eta_z_sparser", "At fixed eta_Y/eta_Z, a larger eta_Z gives a sparser (lower-entropy) final attention",
          f"{SOURCE}, Figure 6",
          "fraction of the (num_last, eta_Y/eta_Z) series whose final distinct-token entropy is lower at the largest "
          "eta_Z than at the smallest", ">=", 0.75),
)


@dataclass(frozen=True)
class Config:
    num_last: tuple[int, ...] = (1, 3, 5, 10)
    eta_z: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    ratios: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
    init: str = "default"
    iters: int = 100
    batch: int = 128
    seeds: tuple[int, ...] = tuple(range(1, 11))


def grid(cfg: Config) -> list[dict]:
    """The Figure-6 runs as variants {num_last, eta_z, ratio, seed}."""
    return [{"num_last": nl, "eta_z": ez, "ratio": r, "seed": s}
            for nl in cfg.num_last for ez in cfg.eta_z for r in cfg.ratios for s in cfg.seeds]


def spec(v: dict, init: str) -> RunSpec:
    return RunSpec(ScanSnapConfig(num_last=v["num_last"], num_next_per_last=2, init=init, seed=v["seed"]),
                   v["eta_z"], v["eta_z"] * v["ratio"])


def experiment(cfg: Config) -> Outcome:
    for name in ("eta_z", "ratios"):
        if len(getattr(cfg, name)) < 2:
            raise ValueError(f"{name}={getattr(cfg, name)} needs at least two values: the claims compare them")
    variants = grid(cfg)
    specs = [spec(v, cfg.init) for v in variants]
    res = sweep(specs, cfg.iters, cfg.batch, device=device(), progress=True)
    rows = []
    for r, (v, s) in enumerate(zip(variants, specs)):
        data = ScanSnapData(s.cfg, res.Z.device)
        rows.append({**v, "entropy": float(distinct_entropy(class_c(res.run_Z(r), data), data.mask("distinct")))})
    return Outcome(pd.DataFrame(rows), summary={"runs (batched)": len(specs)})


def direction(table: pd.DataFrame, vary: str, series: tuple[str, str], sign: int) -> tuple[list[float], list[int]]:
    """Per seed, the fraction of `series` in which sign * (entropy at the largest `vary` - at the smallest) > 0."""
    lo, hi = table[vary].min(), table[vary].max()
    ends = table[table[vary].isin([lo, hi])]
    wide = ends.pivot_table(index=["seed", *series], columns=vary, values="entropy")
    up = (sign * (wide[hi] - wide[lo]) > 0).groupby(level="seed").mean()
    return up.sort_index().tolist(), [int(i) for i in ends.index]


def verdicts(table: pd.DataFrame) -> list:
    return [judge(CLAIMS[0], *direction(table, "ratio", ("num_last", "eta_z"), +1)),
            judge(CLAIMS[1], *direction(table, "eta_z", ("num_last", "ratio"), -1))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    stats = t.groupby(["num_last", "eta_z", "ratio"])["entropy"].agg(["mean", "std"]).fillna(0.0).reset_index()
    nls = sorted(t["num_last"].unique())
    fig, axes = plt.subplots(1, len(nls), figsize=(3.2 * len(nls), 3), squeeze=False)
    for ax, nl in zip(axes[0], nls):
        for ez, s in stats[stats["num_last"] == nl].groupby("eta_z"):
            ax.errorbar(s["ratio"], s["mean"], s["std"], label=f"eta_Z = {ez:g}", capsize=2)
        ax.set(title=f"#query / next tokens = {nl} / {2 * nl}", xlabel="eta_Y / eta_Z")
    axes[0, 0].set_ylabel("final entropy of c over distinct tokens")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path = out / "figure6.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.figure6", title="Scan and Snap, Figure 6: final attention entropy against eta_Y/eta_Z",
    claims=CLAIMS, config=Config(),
    quick=Config(num_last=(1, 3), eta_z=(1.0, 3.0), ratios=(1.0, 10.0), iters=8, batch=32, seeds=(1,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
