"""The shipped Scan-and-Snap trajectory: Z and Y at every iteration of the Figure-4 setup (ratio 1 and 10), recorded
with `probe.trajectory.TrajectoryWriter` (the format every recording uses) so a dashboard can replay c_{l|n} without
training; `probe.load_trajectory` reads it back (traj["Z"] [step, ratio, M, M]).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from analyses.scan_snap.common import FIG4_CFG, FIG4_ETA_Z, FIG4_RATIOS, Result
from probe.ops.scan_snap_sweep import RunSpec, sweep
from probe.trajectory import TrajectoryWriter

DEFAULT_DIR = Path("checkpoints/scan_snap_trajectory")


def run(
    out: str | Path | None = None, quick: bool = False, iters: int | None = None, batch: int | None = None
) -> Result:
    out = Path(out) if out is not None else DEFAULT_DIR
    out.mkdir(parents=True, exist_ok=True)
    iters = iters or (10 if quick else 100)
    batch = batch or (32 if quick else 128)
    specs = [RunSpec(FIG4_CFG, FIG4_ETA_Z, FIG4_ETA_Z * r) for r in FIG4_RATIOS]
    res = sweep(specs, iters, batch, record_every=1)  # CPU: the shipped file is reproducible bit for bit on CPU
    meta = {
        "kind": "scan_snap_trajectory",
        "config": FIG4_CFG.to_dict(),
        "eta_z": FIG4_ETA_Z,
        "ratios": list(FIG4_RATIOS),
        "iters": iters,
        "batch": batch,
        "momentum": 0.9,
        "layout": {
            "Z": "[step, ratio, M, M], Z[query, key]",
            "Y": "[step, ratio, M, M], logits = Y @ bag",
            "loss": "[step, ratio]: the loss of the batch at that step, before its update (NaN at the last step)",
        },
        "command": "python -m analyses.scan_snap trajectory"
        + (" --quick" if quick else "")
        + ("" if out == DEFAULT_DIR else f" --out {out}"),
        "argv": sys.argv,
    }
    writer = TrajectoryWriter(out, meta)
    for i, step in enumerate(res.record_steps):
        loss = res.loss[step] if step < iters else torch.full((len(FIG4_RATIOS),), math.nan)
        writer.append(step, {"Z": res.Z_history[i], "Y": res.Y_history[i], "loss": loss})
    writer.close()
    files = sorted(out.rglob("*.json")) + sorted(out.rglob("*.safetensors"))
    return Result("trajectory", out, {"steps": len(res.record_steps), "d_vocab": FIG4_CFG.d_vocab}, files, None)
