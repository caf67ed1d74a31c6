"""papers.scan_snap.theory: the measurement helpers on hand-computed cases, its verdicts on hand-made tables, and
the --quick pipeline."""

import numpy as np
import pandas as pd
import pytest
import torch

from analyses.papers.scan_snap._common import FIG4_DATA, snap_index
from analyses.papers.scan_snap.theory import STUDY, loglog_slope, sign_fractions, verdicts
from probe.data.scan_snap import ScanSnapData
from tests.analyses.papers.helpers import check_quick, outcomes

ETA_Y = (1.0, 2.0, 4.0, 8.0)
GOOD = {"distinct_rise": [0.9, 0.92, 0.91], "common_fall": [1.0, 0.98, 0.99], "relative_gain": [0.02, 0.03, 0.025],
        "slope": [-1.0, -0.9, -1.1]}


def table(**per_seed):
    v = {**GOOD, **per_seed}
    rows = []
    for seed in range(3):
        for mu in (0.9, 0.0):
            for eta in ETA_Y:
                rows.append({"momentum": mu, "eta_y": eta, "seed": seed, "distinct_up": v["distinct_rise"][seed],
                             "common_down": v["common_fall"][seed], "rel_err": v["relative_gain"][seed],
                             "snap_step": 200 * eta ** v["slope"][seed] if mu == 0.0 else 50.0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("claim", "key", "refuted", "inconclusive"), [
    ("distinct_rise", "distinct_rise", [0.5, 0.55, 0.6], [0.7, 0.95, 0.85]),
    ("common_fall", "common_fall", [0.5, 0.6, 0.55], [0.8, 1.0, 0.95]),
    ("relative_gain", "relative_gain", [0.3, 0.35, 0.4], [0.05, 0.15, 0.1]),
    ("snap_direction", "slope", [0.5, 0.6, 0.4], [-0.3, 0.3, 0.0]),
    ("snap_magnitude", "slope", [-0.1, -0.2, -0.15], [-0.5, -0.9, -0.2]),
])
def test_verdicts(claim, key, refuted, inconclusive):
    assert outcomes(verdicts(table()))[claim] == "supported"
    assert outcomes(verdicts(table(**{key: refuted})))[claim] == "refuted"
    assert outcomes(verdicts(table(**{key: inconclusive})))[claim] == "inconclusive"


def test_snap_claims_read_the_runs_without_momentum():
    t = table()
    t.loc[t["momentum"] == 0.9, "snap_step"] = 10 * t["eta_y"]  # with momentum: slope +1, not judged
    assert outcomes(verdicts(t))["snap_direction"] == "supported"


def test_loglog_slope_and_snap_index():
    x = np.array([0.5, 1.0, 2.0, 10.0])
    assert loglog_slope(x, 30.0 / x) == pytest.approx(-1.0)
    assert loglog_slope(x, np.array([0.0, 0.5, 4.0, 4.0])) == pytest.approx(loglog_slope(x, np.array([1, 1, 4, 4.0])))
    assert snap_index(torch.tensor([0.1, 0.5, 1.0, 0.4, 0.05, 0.2]), 0.1) == 4  # after the peak, below 0.1 x 1.0
    assert snap_index(torch.tensor([0.1, 1.0, 0.5]), 0.1) == 3  # never: the length


def test_sign_fractions_count_the_query_rows():
    data = ScanSnapData(FIG4_DATA)
    Z0 = torch.zeros(data.d_vocab, data.d_vocab)
    Z1 = Z0.clone()
    q0 = data.query[0]
    Z1[q0, data.distinct[0][:5]] = 1.0  # half the distinct tokens of class 0 rise
    Z1[data.query[1], data.distinct[1]] = 1.0  # all of class 1's
    Z1[q0, data.common[0]] = -1.0  # every common token falls for class 0 only
    up, down = sign_fractions(Z0, Z1, data)
    assert up == pytest.approx(15 / 20) and down == pytest.approx(0.5)


def test_quick_pipeline(tmp_path):
    t = check_quick(STUDY, tmp_path, ["momentum", "eta_y", "seed", "distinct_up", "common_down", "rel_err",
                                      "snap_step", "predicted_t0"], rows=4, figures=["theory.png"])
    assert set(t["momentum"]) == {0.9, 0.0}
