"""claims.params_vs_time: verdicts on hand-made tables and the quick run."""

import pandas as pd
import pytest

from analyses.claims import params_vs_time as study
from probe.study import run


def table(time_ratio, param_ratio=1.02) -> pd.DataFrame:
    rows = []
    for seed, r in enumerate(time_ratio):
        rows.append(dict(patch=2, seed=seed, params=int(100_000 * param_ratio), seconds_per_image=0.001 * r))
        rows.append(dict(patch=8, seed=seed, params=100_000, seconds_per_image=0.001))
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "ratios, outcome",
    [([10.0, 12.0, 11.0], "supported"), ([1.0, 1.1, 1.05], "refuted"), ([1.0, 4.0, 2.0], "inconclusive")],
)
def test_verdict_flips_with_the_table(ratios, outcome):
    (v,) = study.verdicts(table(ratios))
    assert v.outcome == outcome and v.n == 3
    assert v.estimate == pytest.approx(sum(ratios) / 3 / 1.02)


def test_a_time_ratio_explained_by_parameters_is_not_support():
    (v,) = study.verdicts(table([10.0, 10.5, 9.8], param_ratio=10.0))  # ten times the parameters: no finding
    assert v.outcome == "refuted"


def test_quick_run_writes_the_report(tmp_path):
    result = run(study.STUDY, quick=True, out=tmp_path)
    t = result.table
    assert sorted(t["patch"]) == [2, 4] and sorted(t["tokens"]) == [5, 17]
    assert (t["seconds_per_image"] > 0).all() and (tmp_path / "params_vs_time.png").is_file()
