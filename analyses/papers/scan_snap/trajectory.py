"""The Scan-and-Snap trajectory (Tian et al. 2023, arXiv 2305.16380, Figure 4): Z and Y at every iteration of the
Figure-4 setup (zero init, eta_Z = 1, eta_Y/eta_Z = 1 and 10), which the dashboard replays as c_{l|n} without
training, and the snap it shows: after the scan the attention stops moving. Snap is measured per run as the mean
speed |c(t+1) - c(t)|_1 (mean over classes) over the last ten iterations against the peak speed. With `save_to` set
the first seed's trajectory is recorded there with `probe.trajectory.TrajectoryWriter`, the format of every recording
(`probe.load_trajectory` reads it: traj["Z"] [step, ratio, M, M]); the shipped one in
checkpoints/scan_snap_trajectory is made by
`python -m analyses run papers.scan_snap.trajectory --set save_to=checkpoints/scan_snap_trajectory`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.papers.scan_snap._common import FIG4_DATA, FIG4_ETA_Z, FIG4_RATIOS, SOURCE, class_c, snap_index, speed
from probe.data.scan_snap import ScanSnapData
from probe.study import Claim, Outcome, Study, command_line, judge, main, per_seed
from probe.train.scan_snap_sweep import RunSpec, sweep
from probe.trajectory import TrajectoryWriter

DEFAULT_DIR = Path("checkpoints/scan_snap_trajectory")
CLAIMS = (
    Claim("snapped", "Snap: after the scan the attention stops moving, at every eta_Y/eta_Z", f"{SOURCE}, Theorem 4 "
          "and Figure 4", "largest, over eta_Y/eta_Z, mean speed of c_(l|n) over the last ten iterations divided by "
          "its peak speed", "<", 0.1),
)
LAST = 10  # iterations averaged into the final speed


@dataclass(frozen=True)
class Config:
    ratios: tuple[float, ...] = FIG4_RATIOS
    eta_z: float = FIG4_ETA_Z
    iters: int = 100
    batch: int = 128
    save_to: str | None = None  # record the first seed's trajectory there (probe.load_trajectory reads it)
    seeds: tuple[int, ...] = (2, 3, 4)  # seed 2: the authors' Figure 4


def experiment(cfg: Config) -> Outcome:
    # on the CPU, so the shipped file is reproducible bit for bit
    data = ScanSnapData(FIG4_DATA)
    variants = [(r, s) for r in cfg.ratios for s in cfg.seeds]
    res = sweep([RunSpec(FIG4_DATA.replace(seed=s), cfg.eta_z, cfg.eta_z * r) for r, s in variants], cfg.iters,
                cfg.batch, record_every=1)
    v = speed(class_c(res.Z_history, data))  # [iters, runs]
    last = min(LAST, len(v))
    table = pd.DataFrame([
        {"ratio": r, "seed": s, "peak_speed": float(v[:, i].max()), "peak_step": int(v[:, i].argmax()),
         "final_speed": float(v[-last:, i].mean()), "final_over_peak": float(v[-last:, i].mean() / v[:, i].max()),
         "snap_step": snap_index(v[:, i], 0.1)}
        for i, (r, s) in enumerate(variants)])
    first = [i for i, (_, s) in enumerate(variants) if s == cfg.seeds[0]]
    meta = {"kind": "scan_snap_trajectory", "config": FIG4_DATA.replace(seed=cfg.seeds[0]).to_dict(),
            "eta_z": cfg.eta_z, "ratios": list(cfg.ratios), "iters": cfg.iters, "batch": cfg.batch, "momentum": 0.9,
            "layout": {"Z": "[step, ratio, M, M], Z[query, key]", "Y": "[step, ratio, M, M], logits = Y @ bag",
                       "loss": "[step, ratio]: the loss of the batch at that step, before its update (NaN at the "
                               "last step)"},
            "command": command_line(), "study_config": dataclasses.asdict(cfg)}
    if cfg.save_to is not None:
        writer = TrajectoryWriter(cfg.save_to, meta)
        for i, step in enumerate(res.record_steps):
            loss = res.loss[step, first] if step < cfg.iters else torch.full((len(first),), math.nan)
            writer.append(step, {"Z": res.Z_history[i, first], "Y": res.Y_history[i, first], "loss": loss})
        writer.close()
    return Outcome(table, artifacts={"speed": v.cpu().numpy(), "variants": variants})


def make(out: str | Path, quick: bool = False) -> Path:
    """Write the trajectory of the study's (quick) configuration's first seed to `out`."""
    cfg = STUDY.quick if quick else STUDY.config
    experiment(dataclasses.replace(cfg, seeds=cfg.seeds[:1], save_to=str(out)))
    return Path(out)


def verdicts(table: pd.DataFrame) -> list:
    return [judge(CLAIMS[0], *per_seed(table, "final_over_peak", "max"))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    v, variants = outcome.artifacts["speed"], outcome.artifacts["variants"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for ratio in sorted({r for r, _ in variants}):
        for j, i in enumerate(i for i, (r, _) in enumerate(variants) if r == ratio):
            ax.plot(range(1, len(v) + 1), v[:, i], color="C0" if ratio == min(r for r, _ in variants) else "C1",
                    alpha=0.7, label=f"eta_Y/eta_Z = {ratio:g}" if j == 0 else None)
    ax.set(yscale="log", xlabel="iteration", ylabel="speed |c(t) - c(t-1)|_1 (mean over classes)",
           title="Snap: the attention stops moving (one line per seed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "trajectory_speed.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.trajectory", title="Scan and Snap: the replayable Figure-4 trajectory, and its snap",
    claims=CLAIMS, config=Config(), quick=Config(iters=10, batch=32, seeds=(2,)), experiment=experiment,
    verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
