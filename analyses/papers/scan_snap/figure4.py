"""Figure 4 of Scan and Snap (Tian et al. 2023, arXiv 2305.16380): the class-conditional attention c_{l|n} of the
reparameterised one-layer model over training, at a small and a large eta_Y/eta_Z (the paper: 1 and 10), from zero
init with SGD (momentum 0.9) on sequences of 128 tokens, two query tokens with one next token each, as the authors'
luckmatters README. Seeds change the sampled batches. The runs go through the batched sweep
(`probe.train.scan_snap_sweep`); the heat-maps show the first seed (seed 2 is the authors' Figure-4 seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analyses.papers.scan_snap._common import FIG4_DATA, FIG4_ETA_Z, FIG4_RATIOS, SOURCE, class_c, device, masses
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import distinct_entropy
from probe.study import Claim, Outcome, Study, judge, main, paired, per_seed
from probe.train.scan_snap_sweep import RunSpec, sweep

CLAIMS = (
    Claim("scan", "Attention leaves the common tokens: their share of c_(l|n) falls during training, at every "
          "eta_Y/eta_Z", f"{SOURCE}, Theorem 2 and Figure 4",
          "smallest drop, over eta_Y/eta_Z, of the common-token mass of c_(l|n) (mean over classes) from the first "
          "to the last iteration", ">", 0.0),
    Claim("denser", "A larger eta_Y/eta_Z ends in a denser (higher-entropy) attention over the distinct tokens",
          f"{SOURCE}, Figure 4",
          "final entropy of c_(l|n) over each class's distinct tokens (nats, mean over classes) at the largest "
          "eta_Y/eta_Z minus at the smallest", ">", 0.0),
)
SHOW_STEPS = (0, 2, 4, 6, 8, 10)  # the iterations the paper's heat-maps show, then the last


@dataclass(frozen=True)
class Config:
    ratios: tuple[float, ...] = FIG4_RATIOS  # eta_Y / eta_Z
    eta_z: float = FIG4_ETA_Z
    iters: int = 100
    batch: int = 128
    seeds: tuple[int, ...] = (2, 3, 4, 5, 6)


def experiment(cfg: Config) -> Outcome:
    if len(cfg.ratios) < 2:
        raise ValueError(f"ratios={cfg.ratios} needs at least two values of eta_Y/eta_Z to compare")
    data = ScanSnapData(FIG4_DATA, device())
    variants = [(r, s) for r in cfg.ratios for s in cfg.seeds]
    specs = [RunSpec(FIG4_DATA.replace(seed=s), cfg.eta_z, cfg.eta_z * r) for r, s in variants]
    res = sweep(specs, cfg.iters, cfg.batch, record_every=1, device=device())
    c = class_c(res.Z_history, data)  # [steps, runs, F, M]
    mass = masses(c, data)
    ent = distinct_entropy(c, data.mask("distinct"))  # [steps, runs]
    common = mass["common"]
    table = pd.DataFrame([
        {"ratio": r, "seed": s, "common_mass_start": float(common[0, i]), "common_mass_end": float(common[-1, i]),
         "common_drop": float(common[0, i] - common[-1, i]), "distinct_mass_end": float(mass["distinct"][-1, i]),
         "entropy_start": float(ent[0, i]), "entropy_end": float(ent[-1, i])}
        for i, (r, s) in enumerate(variants)])
    first = [i for i, (_, s) in enumerate(variants) if s == cfg.seeds[0]]
    return Outcome(table, artifacts={"c": c[:, first].cpu().numpy(), "entropy": ent.cpu().numpy(), "variants": variants,
                                     "steps": res.record_steps, "data": FIG4_DATA})


def verdicts(table: pd.DataFrame) -> list:
    ratios = sorted(table["ratio"].unique())
    drop, rows = per_seed(table, "common_drop", "min")
    denser, rows2 = paired(table, "entropy_end", {"ratio": ratios[-1]}, {"ratio": ratios[0]})
    return [judge(CLAIMS[0], drop, rows), judge(CLAIMS[1], denser, rows2)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    a = outcome.artifacts
    c, steps, cfg = a["c"], a["steps"], a["data"]
    ratios = sorted({r for r, _ in a["variants"]})
    shown = [i for i, s in enumerate(steps) if s in SHOW_STEPS] + [len(steps) - 1]
    width = cfg.num_common + cfg.num_distinct_per_next  # common tokens, then class 0's distinct tokens
    fig, axes = plt.subplots(1, len(ratios) + 1, figsize=(4.5 * (len(ratios) + 1), 4.3))
    for k, (ax, ratio) in enumerate(zip(axes, ratios)):
        ax.imshow(c[shown, k, 0, :width], aspect="auto", cmap="viridis")
        ax.axvline(cfg.num_common - 0.5, color="w", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(shown)), [f"iter {steps[i]}" for i in shown])
        ax.set_xlabel("token (common | distinct of class 0)")
        ax.set_title(f"c_(l|n), eta_Y/eta_Z = {ratio:g}, first seed")
    ent = a["entropy"]
    for ratio in ratios:
        cols = [i for i, (r, _) in enumerate(a["variants"]) if r == ratio]
        axes[-1].plot(steps, ent[:, cols].mean(1), label=f"eta_Y/eta_Z = {ratio:g} (mean of {len(cols)} seeds)")
        axes[-1].fill_between(steps, ent[:, cols].min(1), ent[:, cols].max(1), alpha=0.2)
    axes[-1].set(xlabel="iteration", ylabel="entropy of c over distinct tokens (nats)",
                 title="entropy (band: range over seeds)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    path = out / "figure4.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.figure4", title="Scan and Snap, Figure 4: c_(l|n) during training at eta_Y/eta_Z = 1 and 10",
    claims=CLAIMS, config=Config(), quick=Config(iters=12, batch=32, seeds=(2,)), experiment=experiment,
    verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
