"""papers.scan_snap.figure6: its verdicts on hand-made grids; the --quick pipeline."""

import itertools

import pandas as pd
import pytest

from analyses.papers.scan_snap.figure6 import STUDY, direction, verdicts
from tests.analyses.papers.helpers import check_quick, outcomes


def table(vary: str, fractions):
    """A 2 x 2 x 2 grid per seed in which the direction of `vary` ("ratio": entropy up; "eta_z": entropy down) holds
    in the given fraction of its four series."""
    rows = []
    for seed, frac in enumerate(fractions):
        for i, (nl, other) in enumerate(itertools.product((1, 3), (1.0, 2.0))):
            sign = 1 if i < round(4 * frac) else -1
            for level in (1.0, 10.0):
                step = 0.1 * sign * (level == 10.0)
                eta_z, ratio = (other, level) if vary == "ratio" else (level, other)
                rows.append({"num_last": nl, "eta_z": eta_z, "ratio": ratio, "seed": seed,
                             "entropy": 2.0 + step if vary == "ratio" else 2.0 - step})
    return pd.DataFrame(rows)


def test_direction_counts_series():
    values, rows = direction(table("ratio", [0.75, 0.25]), "ratio", ("num_last", "eta_z"), +1)
    assert values == [0.75, 0.25] and len(rows) == 16


@pytest.mark.parametrize(("claim", "vary"), [("ratio_denser", "ratio"), ("eta_z_sparser", "eta_z")])
@pytest.mark.parametrize(("fractions", "outcome"), [
    ([1.0, 1.0, 1.0], "supported"), ([0.25, 0.5, 0.25], "refuted"), ([1.0, 0.5, 0.75], "inconclusive")])
def test_verdicts(claim, vary, fractions, outcome):
    assert outcomes(verdicts(table(vary, fractions)))[claim] == outcome


def test_quick_pipeline(tmp_path):
    check_quick(STUDY, tmp_path, ["num_last", "eta_z", "ratio", "seed", "entropy"], rows=8, figures=["figure6.png"])
