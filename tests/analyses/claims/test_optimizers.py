"""claims.optimizers: verdicts on hand-made tables, lr selection on validation, state bytes, the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.claims.optimizers import STUDY, best, state_bytes
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes, setv

LRS = (1e-3, 3e-3, 1e-2)
TEST = {("adam", "small"): 1.50, ("adamw", "small"): 1.48, ("adafactor", "small"): 1.55, ("lamb", "small"): 1.52,
        ("adamw", "large"): 1.70, ("lamb", "large"): 1.55}
STATE = {"adam": 1000, "adamw": 1000, "adafactor": 100, "lamb": 1000}


def base() -> pd.DataFrame:
    """Each (optimizer, batch) is best at lr 3e-3 on validation; there its test losses are TEST (+ seed noise)."""
    rows = []
    for (opt, batch), test in TEST.items():
        for lr in LRS:
            for seed in SEEDS:
                good = lr == 3e-3
                rows.append({"optimizer": opt, "batch": batch, "lr": lr, "seed": seed,
                             "val_nll": 1.5 if good else 1.8, "test_nll": (test if good else 1.8) + 0.001 * seed,
                             "state_bytes": STATE[opt]})
    return pd.DataFrame(rows)


def at_best(optimizer, batch):
    return {"optimizer": optimizer, "batch": batch, "lr": 3e-3}


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, base()).values()) == {"supported"}


@pytest.mark.parametrize(("claim", "metric", "where", "refuting", "straddling"), [
    ("adafactor_small_state", "state_bytes", {"optimizer": "adafactor", "batch": "small", "lr": 1e-3},
     [2000, 2000, 2000], [100, 500, 100]),
    ("adamw_not_worse", "test_nll", at_best("adamw", "small"), [1.6, 1.6, 1.6], [1.45, 1.56, 1.5]),
    ("adamw_better", "test_nll", at_best("adamw", "small"), [1.55, 1.56, 1.55], [1.45, 1.56, 1.5]),
    ("lamb_holds_up", "test_nll", at_best("lamb", "large"), [1.8, 1.81, 1.8], [1.55, 1.8, 1.7]),
])
def test_each_claim_can_be_refuted_and_left_open(claim, metric, where, refuting, straddling):
    assert outcomes(STUDY, setv(base(), metric, refuting, **where))[claim] == "refuted"
    assert outcomes(STUDY, setv(base(), metric, straddling, **where))[claim] == "inconclusive"


def test_the_rate_is_chosen_on_validation_not_on_test():
    t = setv(base(), "test_nll", [1.0, 1.0, 1.0], optimizer="adam", batch="small", lr=1e-2)  # best test, bad val
    assert best(t, "adam", "small")["lr"].unique().tolist() == [3e-3]
    t = setv(t, "val_nll", [1.0, 1.0, 1.0], optimizer="adam", batch="small", lr=1e-2)
    assert best(t, "adam", "small")["lr"].unique().tolist() == [1e-2]
    with pytest.raises(ValueError, match="no runs"):
        best(t, "sgd", "small")


def test_state_bytes_counts_adam_moments():
    w = torch.nn.Parameter(torch.zeros(3, 4))
    opt = torch.optim.Adam([w])
    w.grad = torch.ones(3, 4)
    opt.step()
    assert state_bytes(opt) == 2 * 12 * 4 + 4  # two float32 moments and a float32 step counter


def test_quick_run(tmp_path):
    check_quick_run(STUDY, tmp_path, 6, {"optimizer", "batch", "lr", "seed", "val_nll", "test_nll", "state_bytes",
                                         "cpu_s"})
