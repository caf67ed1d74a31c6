"""papers.scan_snap.joma: fall and rise of a curve, its verdicts on hand-made tables, and the --quick pipeline."""

import math

import pandas as pd
import pytest

from analyses.papers.scan_snap.joma import STUDY, fall_rise, verdicts
from tests.analyses.papers.helpers import check_quick, outcomes

GOOD = {"relu_fall": [1.5, 1.6, 1.4], "relu_rise": [0.2, 0.25, 0.22], "linear_rise": [0.0, 0.01, 0.0],
        "diverged": [0, 0, 0]}


def table(**per_seed):
    v = {**GOOD, **per_seed}
    rows = []
    for seed in range(3):
        bad = bool(v["diverged"][seed])
        rows.append({"act": "relu", "seed": seed, "fall": v["relu_fall"][seed], "rise": v["relu_rise"][seed],
                     "diverged": False})
        rows.append({"act": "linear", "seed": seed, "fall": math.nan if bad else 2.0,
                     "rise": math.nan if bad else v["linear_rise"][seed], "diverged": bad})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("claim", "key", "refuted", "inconclusive"), [
    ("relu_falls", "relu_fall", [0.05, 0.02, 0.03], [0.3, 0.0, 0.1]),
    ("relu_rises", "relu_rise", [0.05, 0.02, 0.03], [0.3, 0.0, 0.1]),
    ("linear_no_rise", "linear_rise", [0.3, 0.25, 0.2], [0.0, 0.2, 0.1]),
    ("finite", "diverged", [1, 1, 1], [0, 1, 0]),
])
def test_verdicts(claim, key, refuted, inconclusive):
    assert outcomes(verdicts(table()))[claim] == "supported"
    assert outcomes(verdicts(table(**{key: refuted})))[claim] == "refuted"
    assert outcomes(verdicts(table(**{key: inconclusive})))[claim] == "inconclusive"


def test_a_model_whose_runs_all_diverged_is_not_measured():
    v = {x.claim.id: x for x in verdicts(table(diverged=[1, 1, 1]))}
    assert v["finite"].outcome == "refuted" and v["relu_rises"].outcome == "supported"
    assert v["linear_no_rise"].outcome == "inconclusive" and v["linear_no_rise"].n == 0


def test_fall_rise():
    assert fall_rise([3.0, 1.0, 2.5, 2.0, 1.5], tail=3) == {"start": 3.0, "min": 1.0, "min_index": 1, "end": 2.0,
                                                            "fall": 2.0, "rise": 1.0}
    assert fall_rise([2.0, 1.0, 0.5], tail=3)["rise"] == pytest.approx(1.1666666 - 0.5)


def test_quick_pipeline(tmp_path):
    check_quick(STUDY, tmp_path, ["act", "seed", "start", "min", "end", "fall", "rise", "min_step", "diverged",
                                  "val_loss"], rows=2, figures=["joma_entropy.png"])
