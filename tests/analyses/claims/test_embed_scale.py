"""claims.embed_scale: verdicts on hand-made tables, the norm measurement, and the --quick pipeline."""

import math

import pandas as pd
import pytest
import torch

from analyses.claims.embed_scale import STUDY, norm_ratio
from probe import Transformer, TransformerConfig
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes, setv


def base() -> pd.DataFrame:
    rows = [{"stage": "init", "d_model": d, "scaled": s, "tied": False, "seed": seed,
             "ratio": (d / 2) ** 0.5 / (d**0.5 if s else 1.0) + 0.01 * seed}
            for d in (64, 512) for s in (False, True) for seed in SEEDS]
    rows += [{"stage": "trained", "d_model": 64, "scaled": s, "tied": t, "seed": seed,
              "nll": (1.5 if s else 1.6) + 0.01 * seed * (1 + s)}
             for t in (True, False) for s in (False, True) for seed in SEEDS]
    return pd.DataFrame(rows)


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, base()).values()) == {"supported"}


INIT_512 = {"stage": "init", "d_model": 512}


@pytest.mark.parametrize(("claim", "metric", "where", "refuting", "straddling"), [
    ("positions_dominate_unscaled", "ratio", {**INIT_512, "scaled": False}, [0.5, 0.6, 0.55], [0.5, 1.5, 1.0]),
    ("scaled_tokens_not_drowned", "ratio", {**INIT_512, "scaled": True}, [2.0, 2.1, 2.2], [0.5, 1.5, 1.0]),
    ("scaling_helps_tied", "nll", {"stage": "trained", "scaled": True, "tied": True}, [1.7, 1.72, 1.75],
     [1.5, 1.7, 1.6]),
    ("scaling_helps_untied", "nll", {"stage": "trained", "scaled": True, "tied": False}, [1.7, 1.72, 1.75],
     [1.5, 1.7, 1.6]),
])
def test_each_claim_can_be_refuted_and_left_open(claim, metric, where, refuting, straddling):
    assert outcomes(STUDY, setv(base(), metric, refuting, **where))[claim] == "refuted"
    assert outcomes(STUDY, setv(base(), metric, straddling, **where))[claim] == "inconclusive"


@pytest.mark.parametrize("scaled", [False, True])
def test_norm_ratio_matches_the_closed_form(scaled):
    # a sinusoidal code has norm sqrt(d / 2) at every position; tokens with unit-norm rows (times sqrt(d) if scaled)
    d = 64
    model = Transformer(TransformerConfig(d_model=d, n_heads=4, n_layers=1, d_vocab=10, n_ctx=8, scale_embed=scaled,
                                          positional_embedding_type="sinusoidal"))
    with torch.no_grad():
        model.embed.W_E.copy_(torch.nn.functional.normalize(model.embed.W_E, dim=-1))
    token, position, ratio = norm_ratio(model, torch.arange(8)[None])
    assert position == pytest.approx(math.sqrt(d / 2), rel=1e-5)
    assert token == pytest.approx(math.sqrt(d) if scaled else 1.0, rel=1e-5)
    assert ratio == pytest.approx(position / token)


def test_quick_run(tmp_path):
    table = check_quick_run(STUDY, tmp_path, 2 * 2 + 4, {"stage", "d_model", "scaled", "tied", "ratio", "nll",
                                                         "ece", "cpu_s"})
    assert set(table["stage"]) == {"init", "trained"}
