"""papers.scan_snap.figure4: its verdicts on hand-made tables; the --quick pipeline."""

import pandas as pd
import pytest

from analyses.papers.scan_snap.figure4 import STUDY, verdicts
from tests.analyses.papers.helpers import check_quick, outcomes


def table(drops, denser):
    """Per seed: the common-mass drop (both ratios) and the final entropy gap of ratio 10 over ratio 1."""
    rows = []
    for seed, (drop, gap) in enumerate(zip(drops, denser)):
        rows.append({"ratio": 1.0, "seed": seed, "common_drop": drop + 0.02, "entropy_end": 2.0})
        rows.append({"ratio": 10.0, "seed": seed, "common_drop": drop, "entropy_end": 2.0 + gap})
    return pd.DataFrame(rows)


HOLDS = [0.1, 0.12, 0.11]


@pytest.mark.parametrize(("claim", "drops", "denser", "outcome"), [
    ("scan", HOLDS, HOLDS, "supported"),
    ("scan", [-0.1, -0.12, -0.11], HOLDS, "refuted"),
    ("scan", [0.1, -0.1, 0.05], HOLDS, "inconclusive"),
    ("denser", HOLDS, HOLDS, "supported"),
    ("denser", HOLDS, [-0.05, -0.06, -0.04], "refuted"),
    ("denser", HOLDS, [0.05, -0.05, 0.01], "inconclusive"),
])
def test_verdicts(claim, drops, denser, outcome):
    assert outcomes(verdicts(table(drops, denser)))[claim] == outcome


def test_scan_is_judged_on_the_ratio_with_the_smallest_drop():
    t = table(HOLDS, HOLDS)
    t.loc[t["ratio"] == 1.0, "common_drop"] = -0.2  # falls at ratio 10 only
    assert outcomes(verdicts(t))["scan"] == "refuted"


def test_quick_pipeline(tmp_path):
    t = check_quick(STUDY, tmp_path, ["ratio", "seed", "common_drop", "entropy_end"], rows=2, figures=["figure4.png"])
    assert sorted(t["ratio"]) == [1.0, 10.0]
