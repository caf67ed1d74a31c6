"""claims.label_smoothing: verdicts on hand-made tables and the --quick pipeline."""

import pandas as pd
import pytest

from analyses.claims.label_smoothing import REGIMES, STUDY
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes, setv

VALUES = {0.0: {"ece": 0.08, "nll": 1.20, "accuracy": 0.60}, 0.1: {"ece": 0.03, "nll": 1.25, "accuracy": 0.62}}


def base() -> pd.DataFrame:
    return pd.DataFrame([{"regime": r, "smoothing": eps, "seed": s,
                          **{k: v + 0.001 * s for k, v in VALUES[eps].items()}}
                         for r in REGIMES for eps in VALUES for s in SEEDS])


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, base()).values()) == {"supported"}


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize(("metric", "refuting", "straddling"), [
    ("ece", [0.1, 0.11, 0.1], [0.0, 0.15, 0.08]),
    ("nll", [1.1, 1.11, 1.1], [1.1, 1.35, 1.2]),
    ("accuracy", [0.55, 0.56, 0.55], [0.5, 0.7, 0.6]),
])
def test_each_claim_can_be_refuted_and_left_open_in_each_regime(regime, metric, refuting, straddling):
    claim = f"{metric}_{regime}"
    where = {"regime": regime, "smoothing": 0.1}
    assert outcomes(STUDY, setv(base(), metric, refuting, **where))[claim] == "refuted"
    assert outcomes(STUDY, setv(base(), metric, straddling, **where))[claim] == "inconclusive"
    other = next(r for r in REGIMES if r != regime)
    assert outcomes(STUDY, setv(base(), metric, refuting, **where))[f"{metric}_{other}"] == "supported"


def test_quick_run(tmp_path):
    table = check_quick_run(STUDY, tmp_path, 4, {"regime", "smoothing", "seed", "nll", "accuracy", "ece",
                                                 "mean_confidence", "cpu_s"})
    assert not any(c.startswith("bin") for c in table.columns)  # reliability bins go to the figure only
    assert (tmp_path / "reliability.png").is_file()
