"""Shared helpers of the Scan-and-Snap analyses: the Figure-4 setup, output writing, result object."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from probe.models.scan_snap_config import ScanSnapConfig  # noqa: E402

# Figure 4 of Tian et al. 2023 (luckmatters README): num_last=2, num_next_per_last=1, zero init, seed 2,
# (eta_Y, eta_Z) = (1, 1) and (10, 1), 100 iterations, batch 128, L = 128.
FIG4_CFG = ScanSnapConfig(num_last=2, num_next_per_last=1, num_common_per_last=0, init="zero", seed=2)
FIG4_ETA_Z = 1.0
FIG4_RATIOS = (1.0, 10.0)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Result:
    """What a sub-command returns: its metrics (also in metrics.json), output folder and written files."""

    sub: str
    out: Path
    metrics: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    supported: bool | None = None  # whether the measurement supports the claim under test


def out_dir(sub: str, out: str | Path | None) -> Path:
    path = Path(out) if out is not None else Path("runs/scan_snap") / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def finish(sub: str, out: Path, metrics: dict, report: str, figures: list[Path], supported: bool | None) -> Result:
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    (out / "report.md").write_text(report.rstrip() + "\n")
    return Result(sub, out, metrics, [out / "metrics.json", out / "report.md", *figures], supported)


def verdict(ok: bool) -> str:
    return "**supported**" if ok else "**not supported**"
