"""dynamics.grokking: every verdict flips between supported, refuted and inconclusive on hand-made tables; the
quick run writes its report, table and recording; the phase and fall measures on a hand-made trajectory."""

import math

import numpy as np
import pandas as pd
import pytest

from analyses.dynamics import grokking
from probe.data.modular import modular_addition
from probe.grokking import ProgressMeasures
from probe.study import run

# one row per seed; each claim's quantity per seed is, by the claims' definitions:
#   grokking          (t_test_acc - t_train_acc) / t_train_acc              > 2
#   sparse_embedding  n_key                                                  <= 8
#   restricted_first  t_test_fall - t_restricted_fall                        > 0
#   excluded_rises    ln(excluded_at_cleanup / excluded_at_memorised)        > 0
#   norm_cleanup      norm_rate_cleanup - norm_rate_circuit                  > 0
SUPPORTED = {
    "t_train_acc": [100, 120, 90], "t_test_acc": [5000, 6000, 4000],  # ratios 49, 49, 43.4
    "n_key": [4, 5, 5],
    "t_restricted_fall": [3000, 3500, 2500], "t_test_fall": [4500, 5200, 3900],
    "excluded_at_memorised": [0.1, 0.2, 0.1], "excluded_at_cleanup": [3.0, 4.0, 2.0],
    "norm_rate_circuit": [0.1, 0.05, 0.1], "norm_rate_cleanup": [0.5, 0.6, 0.4],
}
REFUTED = {
    "t_train_acc": [1000, 1200, 900], "t_test_acc": [1500, 1300, 1000],  # ratios 0.5, 0.08, 0.11
    "n_key": [20, 22, 21],
    "t_restricted_fall": [5000, 5600, 4500], "t_test_fall": [4500, 5200, 3900],
    "excluded_at_memorised": [1.0, 2.0, 1.0], "excluded_at_cleanup": [0.5, 0.4, 0.3],
    "norm_rate_circuit": [0.5, 0.6, 0.4], "norm_rate_cleanup": [0.1, 0.05, 0.1],
}
STRADDLING = {
    "t_train_acc": [100, 100, 100], "t_test_acc": [150, 800, 400],  # ratios 0.5, 7, 3
    "n_key": [3, 14, 8],
    "t_restricted_fall": [3000, 5300, 4000], "t_test_fall": [4500, 5200, 3900],
    "excluded_at_memorised": [0.1, 2.0, 1.0], "excluded_at_cleanup": [3.0, 0.4, 1.5],
    "norm_rate_circuit": [0.1, 0.6, 0.2], "norm_rate_cleanup": [0.5, 0.05, 0.3],
}
CLAIM_IDS = [c.id for c in grokking.CLAIMS]


def table(columns):
    return pd.DataFrame({"seed": [0, 1, 2], **columns})


@pytest.mark.parametrize(("columns", "outcome"), [(SUPPORTED, "supported"), (REFUTED, "refuted"),
                                                  (STRADDLING, "inconclusive")])
def test_every_claim_flips_with_the_table(columns, outcome):
    verdicts = grokking.verdicts(table(columns))
    assert [v.claim.id for v in verdicts] == CLAIM_IDS
    for v in verdicts:
        assert v.outcome == outcome, v
        assert v.n == 3 and v.rows == (0, 1, 2)


def test_verdict_estimates_are_the_claimed_quantities():
    v = {v.claim.id: v for v in grokking.verdicts(table(SUPPORTED))}
    assert v["grokking"].values == pytest.approx((49.0, 49.0, 3910 / 90))
    assert v["sparse_embedding"].estimate == pytest.approx(14 / 3)
    assert v["restricted_first"].values == (1500.0, 1700.0, 1400.0)
    assert v["excluded_rises"].values == pytest.approx((math.log(30), math.log(20), math.log(20)))
    assert v["norm_cleanup"].values == pytest.approx((0.4, 0.55, 0.3))


@pytest.mark.parametrize(("name", "claim"), [("t_test_acc", "grokking"), ("t_test_fall", "restricted_first"),
                                             ("excluded_at_cleanup", "excluded_rises"),
                                             ("norm_rate_cleanup", "norm_cleanup")])
def test_a_seed_whose_event_never_happened_makes_the_claim_inconclusive(name, claim):
    columns = {k: list(v) for k, v in SUPPORTED.items()}
    columns[name][1] = math.nan
    verdicts = {v.claim.id: v for v in grokking.verdicts(table(columns))}
    assert verdicts[claim].outcome == "inconclusive" and verdicts[claim].n == 2  # judged on the other seeds
    others = [v.outcome for c, v in verdicts.items() if c != claim]
    assert others == ["supported"] * 4
    columns[name] = [math.nan] * 3
    none = {v.claim.id: v for v in grokking.verdicts(table(columns))}[claim]
    assert none.outcome == "inconclusive" and none.n == 0


def test_fall_rate_is_the_least_squares_slope_of_the_log_norm():
    steps = np.arange(0, 2000, 100)
    norm = 100 * np.exp(-0.3 * steps / 1000)  # falls 0.3 per 1000 steps in ln
    assert grokking._fall_rate(steps, norm, 500, 1500) == pytest.approx(0.3)
    assert math.isnan(grokking._fall_rate(steps, norm, 500, 550))  # one record
    assert math.isnan(grokking._fall_rate(steps, norm, math.nan, 1500))


def test_config_presets_and_refusals():
    assert grokking.Config().resolved == {"p": 59, "steps": 20000}
    assert grokking.Config(preset="paper").resolved == {"p": 113, "steps": 40000}
    assert grokking.Config(preset="paper", steps=100).resolved == {"p": 113, "steps": 100}
    paper = grokking.STUDY.configure(overrides={"preset": "paper"})
    assert (paper.resolved["p"], paper.d_model, paper.d_mlp, paper.frac_train) == (113, 128, 512, 0.3)
    with pytest.raises(ValueError, match="preset='huge'"):
        grokking.Config(preset="huge")
    with pytest.raises(ValueError, match="p=2"):
        grokking.Config(p=2)


def test_quick_run_writes_the_report_and_the_recording(tmp_path):
    result = run(grokking.STUDY, quick=True, out=tmp_path / "out",
                 overrides={"record_dir": str(tmp_path / "rec"), "ship": str(tmp_path / "ckpt")})
    for name in ("report.md", "metrics.json", "table.csv", "curves.png", "spectrum.png"):
        assert (tmp_path / "out" / name).is_file()
    t = result.table
    assert len(t) == 1 and {"key_freqs", "t_memorised", "t_cleanup", "t_generalised", "record_diff",
                            "cpu_s", "wall_s"} <= set(t.columns)
    assert t.record_diff.iloc[0] == 0.0  # the last snapshot is the final model
    assert [v.claim.id for v in result.verdicts] == CLAIM_IDS
    import probe

    traj = probe.load_trajectory(tmp_path / "rec" / "seed0")
    cfg = grokking.STUDY.quick
    assert list(traj.steps) == list(range(0, cfg.steps + 1, cfg.every))
    assert traj["grokking.spectrum"].shape == (len(traj.steps), cfg.p // 2 + 1)
    model = probe.load(tmp_path / "ckpt")
    assert model.cfg.d_vocab == cfg.p + 1 and (tmp_path / "ckpt" / "trajectory").is_dir()
    meta = probe.checkpoint.read_meta(tmp_path / "ckpt")
    keys = [int(k) for k in t.key_freqs.iloc[0].split()]
    assert meta["key_freqs"] == keys and traj.meta["key_freqs"] == keys
    # the last record's measures are those of the final (shipped) model
    task = modular_addition(cfg.p, cfg.frac_train, seed=0)
    final = ProgressMeasures(task, key_freqs=keys)(model, cfg.steps)
    for name in ("test_loss", "restricted_loss", "excluded_loss", "weight_norm", "train_acc"):
        assert traj[f"grokking.{name}"][-1].item() == pytest.approx(final[name], rel=1e-5)
