"""dynamics.induction_formation: the verdicts on hand-made tables (supported, refuted, inconclusive for every claim),
the --quick pipeline, and the study's own measurement helpers on hand-built cases."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from analyses.dynamics import induction_formation as study
from probe.data.induction import RepeatedBlocks
from probe.study import read_result, run

GOOD = {  # per-seed values that support every claim, clearly
    2: {"best_prefix_matching": [0.8, 0.85, 0.9], "score_start": [0.05] * 3, "score_end": [0.8, 0.85, 0.9],
        "score_share": [0.8, 0.85, 0.9], "coincidence": [0.1, 0.05, 0.15], "icl_gain": [2.0, 2.2, 2.1],
        "k_comp_ratio": [3.0, 3.5, 3.2], "ablation_removed": [0.8, 0.85, 0.9]},
    1: {"best_prefix_matching": [0.05, 0.06, 0.07], "icl_gain": [0.1, 0.11, 0.09]},
}
OTHER_SIDE = {"best_prefix_matching": [0.2, 0.25, 0.3], "score_share": [0.2, 0.25, 0.3],
              "coincidence": [1.0, 1.2, 1.1], "k_comp_ratio": [1.0, 1.1, 1.2], "ablation_removed": [0.1, 0.15, 0.2]}
STRADDLE = {"best_prefix_matching": [0.3, 0.5, 0.7], "score_share": [0.3, 0.5, 0.7], "coincidence": [0.1, 0.5, 0.9],
            "k_comp_ratio": [1.0, 2.0, 3.0], "ablation_removed": [0.3, 0.5, 0.7]}
ONE_LAYER_OTHER = {"best_prefix_matching": [0.5, 0.55, 0.6], "icl_gain": [1.8, 1.9, 2.0]}
ONE_LAYER_STRADDLE = {"best_prefix_matching": [0.1, 0.2, 0.3], "icl_gain": [0.2, 0.5, 0.8]}


def table(two=None, one=None) -> pd.DataFrame:
    rows = []
    for layers, base, change in ((1, GOOD[1], one or {}), (2, GOOD[2], two or {})):
        values = {**base, **change}
        for seed in range(3):
            rows.append({"layers": layers, "seed": seed, **{k: v[seed] for k, v in values.items()}})
    return pd.DataFrame(rows)


def outcomes(t: pd.DataFrame) -> dict[str, str]:
    return {v.claim.id: v.outcome for v in study.verdicts(t)}


def test_every_claim_supported():
    assert set(outcomes(table()).values()) == {"supported"}
    assert [v.claim for v in study.verdicts(table())] == list(study.CLAIMS)


@pytest.mark.parametrize("claim, metric", [("forms", "best_prefix_matching"), ("abrupt", "score_share"),
                                           ("coincides", "coincidence"), ("k_composition", "k_comp_ratio"),
                                           ("ablation", "ablation_removed")])
def test_two_layer_claims_flip(claim, metric):
    assert outcomes(table(two={metric: OTHER_SIDE[metric]}))[claim] == "refuted"
    assert outcomes(table(two={metric: STRADDLE[metric]}))[claim] == "inconclusive"


@pytest.mark.parametrize("claim, metric", [("one_layer_no_head", "best_prefix_matching"),
                                           ("one_layer_little_icl", "icl_gain")])
def test_one_layer_claims_flip(claim, metric):
    assert outcomes(table(one={metric: ONE_LAYER_OTHER[metric]}))[claim] == "refuted"
    assert outcomes(table(one={metric: ONE_LAYER_STRADDLE[metric]}))[claim] == "inconclusive"


def test_window_claims_use_only_seeds_whose_score_rose():
    # seed 2's score did not rise: its (garbage) window does not count
    t = table(two={"score_end": [0.8, 0.85, 0.1], "score_share": [0.8, 0.85, 0.01]})
    v = {v.claim.id: v for v in study.verdicts(t)}["abrupt"]
    assert v.n == 2 and v.values == (0.8, 0.85)
    # no seed rose: nothing to judge, said plainly
    v = {v.claim.id: v for v in study.verdicts(table(two={"score_end": [0.05] * 3}))}["abrupt"]
    assert v.outcome == "inconclusive" and v.n == 0 and math.isnan(v.estimate)


def test_one_layer_gain_is_paired_by_seed():
    v = {v.claim.id: v for v in study.verdicts(table())}["one_layer_little_icl"]
    np.testing.assert_allclose(v.values, [0.1 / 2.0, 0.11 / 2.2, 0.09 / 2.1])


def test_quick_run_writes_the_pipeline(tmp_path):
    result = run(study.STUDY, quick=True, out=tmp_path / "out",
                 overrides={"save": str(tmp_path / "ckpt"), "recordings": str(tmp_path / "rec")})
    t = result.table
    assert len(t) == 2 and sorted(t["layers"]) == [1, 2]
    for col in ("icl_gain", "best_prefix_matching", "score_share", "lag", "k_comp_ratio", "ablation_removed",
                "acc_B2", "oracle_B6", "cpu_s", "wall_s"):
        assert col in t.columns
    assert math.isnan(t[t["layers"] == 1]["k_comp_ratio"].iloc[0])
    assert {v.claim.id for v in result.verdicts} == {c.id for c in study.CLAIMS}
    for name in ("report.md", "metrics.json", "table.csv", "phase_change.png", "accuracy_by_block.png",
                 "prefix_matching.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert read_result(tmp_path / "out")["study"] == "dynamics.induction_formation"
    # the 2-layer run of the first seed is shipped: a checkpoint with its recording and the study's measurements
    import probe

    model = probe.load(tmp_path / "ckpt")
    assert model.cfg.n_layers == 2 and model.cfg.attn_only
    meta = json.loads((tmp_path / "ckpt" / "meta.json").read_text())
    assert meta["task"]["max_gap"] == study.QUICK.max_gap and "repeated_blocks" in meta["task"]["generator"]
    assert meta["metrics"]["best_head"] == t[t["layers"] == 2]["best_head"].iloc[0]
    traj = probe.load_trajectory(tmp_path / "ckpt" / "trajectory")
    assert "attention.blocks.1.attn.hook_pattern" in traj.names and "head_scores.induction" in traj.names
    assert (tmp_path / "rec" / "L1_seed0" / "trajectory.json").is_file()
    # a second run into the same checkpoint (`make demo` twice) replaces the model and its recording; this one trains
    # its 1- and 2-layer models in two worker processes (as `make demo` does), the shipped one saved from a worker
    again = run(study.STUDY, quick=True, out=tmp_path / "out2", seeds=[1],
                overrides={"save": str(tmp_path / "ckpt"), "workers": 2})
    assert sorted(again.table["layers"]) == [1, 2]
    meta = json.loads((tmp_path / "ckpt" / "meta.json").read_text())
    assert meta["metrics"]["best_head"] == again.table[again.table["layers"] == 2]["best_head"].iloc[0]
    assert probe.load_trajectory(tmp_path / "ckpt" / "trajectory").steps[-1] == study.QUICK.steps


def test_shifted_matching_by_hand():
    tokens = torch.tensor([[1, 5, 6, 7, 5, 6, 7]])
    data = RepeatedBlocks(tokens, copy=torch.tensor([[0, 1, 1, 1, 2, 2, 2]]),
                          index=torch.tensor([[0, 0, 1, 2, 0, 1, 2]]), block=torch.tensor([[0, 3, 3, 3, 3, 3, 3]]))
    pattern = torch.zeros(1, 2, 7, 7)
    pattern[0, 0, :, 0] = 1.0  # head 0: all on bos
    for q, k in ((4, 3), (5, 4), (6, 5)):  # head 1: two after the earlier occurrence
        pattern[0, 1, q, k] = 1.0
    torch.testing.assert_close(study.shifted_matching(pattern, data), torch.tensor([0.0, 1.0]))
