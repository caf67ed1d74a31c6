"""claims.dropout: verdicts on hand-made tables, the repeat measurement, and the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.claims.dropout import STUDY, repeat_difference
from probe import Transformer, TransformerConfig
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes, setv

GAP = {0.0: 1.0, 0.1: 0.6, 0.3: 0.3}
TEST = {0.0: 2.0, 0.1: 1.8, 0.3: 1.9}


def base() -> pd.DataFrame:
    return pd.DataFrame([{"p": p, "seed": s, "gap": GAP[p] + 0.01 * s, "test_nll": TEST[p] + 0.01 * s,
                          "eval_repeat_diff": 0.0, "train_repeat_diff": 0.0 if p == 0 else 3.0}
                         for p in GAP for s in SEEDS])


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, base()).values()) == {"supported"}


@pytest.mark.parametrize(("claim", "metric", "p", "refuting", "straddling"), [
    ("narrows_gap_01", "gap", 0.1, [1.2, 1.3, 1.2], [0.5, 1.5, 1.0]),
    ("narrows_gap_03", "gap", 0.3, [1.2, 1.3, 1.2], [0.5, 1.5, 1.0]),
    ("lowers_test_loss", "test_nll", 0.1, [2.2, 2.3, 2.2], [1.5, 2.5, 2.0]),
])
def test_each_gap_claim_can_be_refuted_and_left_open(claim, metric, p, refuting, straddling):
    assert outcomes(STUDY, setv(base(), metric, refuting, p=p))[claim] == "refuted"
    assert outcomes(STUDY, setv(base(), metric, straddling, p=p))[claim] == "inconclusive"


def test_determinism_claims_flip():
    noisy_eval = setv(setv(base(), "eval_repeat_diff", [1e-3] * 3, p=0.3), "eval_repeat_diff", [1e-3] * 3, p=0.1)
    assert outcomes(STUDY, noisy_eval)["eval_deterministic"] == "refuted"
    some_noise = setv(base(), "eval_repeat_diff", [0.0, 1e-3, 0.0], p=0.3)  # range [0, 1e-3] straddles 0
    assert outcomes(STUDY, some_noise)["eval_deterministic"] == "inconclusive"
    quiet_train = setv(setv(base(), "train_repeat_diff", [0.0] * 3, p=0.1), "train_repeat_diff", [0.0] * 3, p=0.3)
    assert outcomes(STUDY, quiet_train)["train_stochastic"] == "refuted"
    assert outcomes(STUDY, setv(base(), "train_repeat_diff", [0.0, 2.0, 2.0], p=0.1))["train_stochastic"] == \
        "inconclusive"


def test_repeat_difference_sees_dropout_only_in_training():
    model = Transformer(TransformerConfig(d_model=16, n_heads=2, n_layers=1, d_vocab=10, n_ctx=8, dropout=0.3))
    tokens = torch.randint(0, 10, (2, 8))
    assert repeat_difference(model, tokens, training=False) == 0.0
    assert repeat_difference(model, tokens, training=True) > 0.0
    assert model.training  # the mode is restored


def test_quick_run(tmp_path):
    table = check_quick_run(STUDY, tmp_path, 3, {"p", "seed", "train_nll", "test_nll", "gap", "eval_repeat_diff",
                                                 "train_repeat_diff", "cpu_s"})
    assert (table["eval_repeat_diff"] == 0).all()
