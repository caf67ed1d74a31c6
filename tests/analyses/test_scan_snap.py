"""`python -m analyses.scan_snap` (Tian et al. 2023 Scan and Snap; JoMA): every sub-command in --quick mode writes its
files; the figure6 flags shape the grid; the shipped trajectory is what its command makes."""

import json

import torch

from analyses.scan_snap import SUBCOMMANDS
from analyses.scan_snap.__main__ import main
from analyses.scan_snap.common import FIG4_CFG, FIG4_ETA_Z, FIG4_RATIOS
from analyses.scan_snap.trajectory import load_trajectory
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import class_attention
from probe.ops.scan_snap_sweep import RunSpec, sweep


def test_all_quick_writes_files(tmp_path):
    main(["all", "--quick", "--out", str(tmp_path)])
    for sub in SUBCOMMANDS:
        out = tmp_path / sub
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics, sub
        assert "claim" in (out / "report.md").read_text().lower(), sub
        assert list(out.glob("*.png")), sub
    rows = json.loads((tmp_path / "figure6" / "metrics.json").read_text())["figure6"]
    assert set(rows[0]) == {"num_last", "eta_z", "ratio", "entropy_mean", "entropy_std", "seeds"}


def test_figure6_flags(tmp_path):
    main(
        [
            "figure6",
            "--num-last",
            "1",
            "--eta-z",
            "1",
            "2",
            "--ratio",
            "1",
            "--seeds",
            "2",
            "--iters",
            "3",
            "--init",
            "zero",
            "--out",
            str(tmp_path),
        ]
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [(r["eta_z"], r["seeds"]) for r in metrics["figure6"]] == [(1.0, 2), (2.0, 2)]
    assert metrics["init"] == "zero" and metrics["iters"] == 3


def test_shipped_trajectory_replays():
    tensors, meta, cfg = load_trajectory()
    steps = len(meta["steps"])
    M = cfg.d_vocab
    assert cfg == FIG4_CFG and meta["ratios"] == list(FIG4_RATIOS)
    assert tensors["Z"].shape == (len(FIG4_RATIOS), steps, M, M) == tensors["Y"].shape
    data = ScanSnapData(cfg)
    c0 = class_attention(tensors["Z"][:, 0], data.cond_prob(), data.query)
    torch.testing.assert_close(c0, data.cond_prob().expand_as(c0))  # zero init: c = P(l|n)
    # its first steps are what the recorded command computes
    res = sweep([RunSpec(cfg, FIG4_ETA_Z, FIG4_ETA_Z * r) for r in FIG4_RATIOS], 3, meta["batch"], record_every=1)
    torch.testing.assert_close(res.Z_history.transpose(0, 1), tensors["Z"][:, :4], atol=1e-5, rtol=1e-4)
