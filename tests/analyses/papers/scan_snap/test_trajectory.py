"""papers.scan_snap.trajectory: its verdict on hand-made tables, the --quick pipeline, the written file, and the
shipped trajectory (checkpoints/scan_snap_trajectory) against the command recorded in it."""

import pandas as pd
import pytest
import torch

from analyses.papers.scan_snap._common import FIG4_DATA, FIG4_ETA_Z, FIG4_RATIOS
from analyses.papers.scan_snap.trajectory import DEFAULT_DIR, STUDY, make, verdicts
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import class_attention
from probe.models.scan_snap_config import ScanSnapConfig
from probe.train.scan_snap_sweep import RunSpec, sweep
from probe.trajectory import load_trajectory
from tests.analyses.papers.helpers import check_quick, outcomes


def table(final_over_peak):
    return pd.DataFrame([{"ratio": r, "seed": s, "final_over_peak": v * (0.5 if r == 1.0 else 1.0)}
                         for s, v in enumerate(final_over_peak) for r in (1.0, 10.0)])


@pytest.mark.parametrize(("values", "outcome"), [
    ([0.02, 0.03, 0.025], "supported"), ([0.3, 0.4, 0.35], "refuted"), ([0.02, 0.3, 0.1], "inconclusive")])
def test_verdicts(values, outcome):
    assert outcomes(verdicts(table(values)))["snapped"] == outcome


def test_quick_pipeline_and_the_written_trajectory(tmp_path):
    check_quick(STUDY, tmp_path, ["ratio", "seed", "peak_speed", "final_speed", "final_over_peak", "snap_step"],
                rows=2, figures=["trajectory_speed.png"])
    traj = load_trajectory(make(tmp_path / "traj", quick=True))
    cfg = ScanSnapConfig.from_dict(traj.meta["config"])
    assert cfg == FIG4_DATA.replace(seed=STUDY.quick.seeds[0]) and traj.meta["iters"] == STUDY.quick.iters
    assert traj.steps.tolist() == list(range(STUDY.quick.iters + 1))
    assert traj["Z"].shape == (STUDY.quick.iters + 1, len(FIG4_RATIOS), cfg.d_vocab, cfg.d_vocab)
    assert torch.isnan(traj["loss"][-1]).all() and not torch.isnan(traj["loss"][:-1]).any()


def test_shipped_trajectory_replays():
    traj = load_trajectory(DEFAULT_DIR)
    cfg = ScanSnapConfig.from_dict(traj.meta["config"])
    assert cfg == FIG4_DATA.replace(seed=2) and traj.meta["ratios"] == list(FIG4_RATIOS)
    assert traj.meta["command"].startswith("python -m analyses run papers.scan_snap.trajectory")
    assert traj["Z"].shape == (len(traj.steps), len(FIG4_RATIOS), cfg.d_vocab, cfg.d_vocab) == traj["Y"].shape
    data = ScanSnapData(cfg)
    c0 = class_attention(traj["Z"][0], data.cond_prob(), data.query)
    torch.testing.assert_close(c0, data.cond_prob().expand_as(c0))  # zero init: c = P(l|n)
    # its first steps are what the recorded configuration computes
    res = sweep([RunSpec(cfg, FIG4_ETA_Z, FIG4_ETA_Z * r) for r in FIG4_RATIOS], 3, traj.meta["batch"],
                record_every=1)
    torch.testing.assert_close(res.Z_history, traj["Z"][:4], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res.loss, traj["loss"][:3])
