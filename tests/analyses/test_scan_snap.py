"""`python -m analyses.scan_snap` (Tian et al. 2023 Scan and Snap; JoMA): every sub-command in --quick mode writes its
files; the figure6 flags shape the grid; the shipped trajectory is what its command makes."""

import json
import math

import pytest
import torch

from analyses.scan_snap import SUBCOMMANDS
from analyses.scan_snap.__main__ import main
from analyses.scan_snap.common import FIG4_CFG, FIG4_ETA_Z, FIG4_RATIOS
from analyses.scan_snap.trajectory import DEFAULT_DIR
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import class_attention
from probe.models.scan_snap_config import ScanSnapConfig
from probe.ops.scan_snap_sweep import RunSpec, sweep
from probe.trajectory import load_trajectory


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
    traj = load_trajectory(DEFAULT_DIR)
    cfg = ScanSnapConfig.from_dict(traj.meta["config"])
    steps, M = len(traj.steps), cfg.d_vocab
    assert cfg == FIG4_CFG and traj.meta["ratios"] == list(FIG4_RATIOS) and traj.steps.tolist() == list(range(101))
    assert traj["Z"].shape == (steps, len(FIG4_RATIOS), M, M) == traj["Y"].shape
    data = ScanSnapData(cfg)
    c0 = class_attention(traj["Z"][0], data.cond_prob(), data.query)
    torch.testing.assert_close(c0, data.cond_prob().expand_as(c0))  # zero init: c = P(l|n)
    # its first steps are what the recorded command computes
    res = sweep([RunSpec(cfg, FIG4_ETA_Z, FIG4_ETA_Z * r) for r in FIG4_RATIOS], 3, traj.meta["batch"],
                record_every=1)
    torch.testing.assert_close(res.Z_history, traj["Z"][:4], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res.loss, traj["loss"][:3])


def test_text_quick_measures_entropy_per_run(tmp_path):
    from analyses.scan_snap.text import run

    res = run(out=tmp_path, quick=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "text_attention_entropy.png").exists() and "claim" in (tmp_path / "report.md").read_text()
    assert set(metrics["summary"]) == {f"L{L}_lr{lr:g}" for L in (1, 3) for lr in (0.05, 0.2, 0.5)}
    for key, v in metrics["summary"].items():
        assert len(v["final_entropy_per_layer"]) == int(key[1]), key
        s = v["layer0"]
        curve = metrics["curves"][key]["entropy"][0]
        assert v["nonfinite_at_step"] is None and s["start"] == curve[0] and s["final"] == curve[-1], key
        assert 0.0 < s["min"] <= s["final"] and s["fall"] == pytest.approx(s["start"] - s["min"]), key
    assert res.supported == (
        metrics["first_layer_sparser_at_end"] and metrics["first_layer_frozen"] and metrics["higher_lr_lower_entropy"]
    )


def test_text_nan_is_reported_not_dropped():
    from analyses.scan_snap.text import curve_stats, first_nonfinite

    rec = {"step": [0, 2, 4], "loss": [2.0, 1.5, float("nan"), float("nan")], "entropy": [[2.0, 1.0, 1.2]]}
    assert first_nonfinite(rec) == 2
    assert first_nonfinite(rec | {"loss": [2.0, 1.5, 1.4, 1.3], "entropy": [[2.0, float("inf"), 1.0]]}) == 2
    assert first_nonfinite(rec | {"loss": [2.0, 1.5, 1.4, 1.3]}) is None
    assert all(math.isnan(v) for v in curve_stats([2.0, float("nan"), 1.0]).values())
    s = curve_stats([2.0, 1.0, 1.2, 1.1, 1.15, 1.1, 1.12, 1.1], tail=0.25)
    assert s["fall"] == pytest.approx(1.0) and s["late_drift"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="lrs"):
        __import__("analyses.scan_snap.text", fromlist=["run"]).run(lrs=(0.5, 0.2), quick=True)


def test_joma_quick_measures_fall_and_rise(tmp_path):
    from analyses.scan_snap.joma import fall_rise, run

    assert fall_rise([3.0, 1.0, 2.5, 2.0, 1.5], tail=3) == {
        "start": 3.0,
        "min": 1.0,
        "min_index": 1,
        "end": 2.0,
        "fall": 2.0,
        "rise": 1.0,
    }
    res = run(out=tmp_path, quick=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "joma_entropy.png").exists() and "claim" in (tmp_path / "report.md").read_text()
    assert metrics["diverged"] == {}
    for act in ("relu", "linear"):
        c, s = metrics["curves"][act], metrics["stats"][act]
        assert len(c) == len(metrics["curves"]["step"]) and s["min"] == min(c) and s["start"] == c[0]
        assert s["fall"] >= 0.0 and s["rise"] == pytest.approx(sum(c[-metrics["tail"] :]) / metrics["tail"] - min(c))
        assert len(metrics["per_seed"][act]) == metrics["seeds"]
    relu, lin, bound = metrics["stats"]["relu"], metrics["stats"]["linear"], metrics["bound"]
    assert res.supported == (relu["fall"] > bound and relu["rise"] > bound and lin["rise"] < bound)
