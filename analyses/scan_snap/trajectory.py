"""The shipped Scan-and-Snap trajectory: Z and Y at every iteration of the Figure-4 setup (ratio 1 and 10), saved as
safetensors + JSON so a dashboard can replay c_{l|n} without training. `load_trajectory` reads it back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from analyses.scan_snap.common import FIG4_CFG, FIG4_ETA_Z, FIG4_RATIOS, Result
from probe.models.scan_snap_config import ScanSnapConfig
from probe.ops.scan_snap_sweep import RunSpec, sweep

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
    tensors = {
        "Z": res.Z_history.transpose(0, 1).contiguous(),  # [ratio, step, M, M]
        "Y": res.Y_history.transpose(0, 1).contiguous(),
        "loss": res.loss.T.contiguous(),  # [ratio, iters]
    }
    save_file(tensors, str(out / "trajectory.safetensors"))
    meta = {
        "kind": "scan_snap_trajectory",
        "config": FIG4_CFG.to_dict(),
        "eta_z": FIG4_ETA_Z,
        "ratios": list(FIG4_RATIOS),
        "steps": res.record_steps,
        "iters": iters,
        "batch": batch,
        "momentum": 0.9,
        "layout": {
            "Z": "[ratio, step, M, M], Z[query, key]",
            "Y": "[ratio, step, M, M], logits = Y @ bag",
            "loss": "[ratio, iter]",
        },
        "command": "python -m analyses.scan_snap trajectory"
        + (" --quick" if quick else "")
        + ("" if out == DEFAULT_DIR else f" --out {out}"),
        "argv": sys.argv,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    files = [out / "trajectory.safetensors", out / "meta.json"]
    return Result("trajectory", out, {"steps": len(res.record_steps), "d_vocab": FIG4_CFG.d_vocab}, files, None)


def load_trajectory(path: str | Path = DEFAULT_DIR) -> tuple[dict[str, torch.Tensor], dict, ScanSnapConfig]:
    """(tensors, meta, cfg) of a saved trajectory."""
    path = Path(path)
    if not (path / "trajectory.safetensors").exists():
        raise FileNotFoundError(
            f"no trajectory.safetensors in {path}; make it with `python -m analyses.scan_snap trajectory`"
        )
    meta = json.loads((path / "meta.json").read_text())
    return load_file(str(path / "trajectory.safetensors")), meta, ScanSnapConfig.from_dict(meta["config"])
