"""papers.scan_snap.text: curve statistics and divergence detection, its verdicts on hand-made tables, and the
--quick pipeline."""

import dataclasses
import math

import pandas as pd
import pytest

from analyses.papers.scan_snap._text import TextTraining, train_text
from analyses.papers.scan_snap.text import STUDY, curve_stats, verdicts
from tests.analyses.papers.helpers import check_quick, outcomes

LRS = (0.05, 0.2, 0.5)
GOOD = {"decrease": [0.5, 0.6, 0.55], "drift": [0.05, 0.06, 0.04], "gap": [0.1, 0.12, 0.11], "diverged": [0, 0, 0]}


def table(**per_seed):
    """Per seed: every run's first-layer entropy decrease and late drift (its fall is 1), the final entropy's step
    between adjacent learning rates, and how many runs diverged (the 3-layer run at the largest rate first)."""
    v = {**GOOD, **per_seed}
    rows = []
    for seed in range(3):
        for n_layers in (1, 3):
            for i, lr in enumerate(LRS):
                bad = (n_layers, lr) in [(3, 0.5), (1, 0.5)][: v["diverged"][seed]]
                stats = {"decrease": v["decrease"][seed], "fall": 1.0, "late_drift": v["drift"][seed],
                         "final": 2.0 - i * v["gap"][seed]}
                for layer in range(n_layers):
                    rows.append({"n_layers": n_layers, "lr": lr, "seed": seed, "layer": layer, "diverged": bad,
                                 **({k: math.nan for k in stats} if bad else stats)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("claim", "key", "refuted", "inconclusive"), [
    ("sparser", "decrease", [-0.5, -0.6, -0.55], [0.5, -0.5, 0.1]),
    ("frozen", "drift", [0.5, 0.6, 0.4], [0.05, 0.5, 0.2]),
    ("lr_sparser", "gap", [-0.1, -0.12, -0.11], [0.1, -0.1, 0.02]),
    ("finite", "diverged", [1, 2, 1], [0, 1, 0]),
])
def test_verdicts(claim, key, refuted, inconclusive):
    assert outcomes(verdicts(table()))[claim] == "supported"
    assert outcomes(verdicts(table(**{key: refuted})))[claim] == "refuted"
    assert outcomes(verdicts(table(**{key: inconclusive})))[claim] == "inconclusive"


def test_a_diverged_run_counts_against_finite_and_is_left_out_of_the_others():
    found = outcomes(verdicts(table(diverged=[1, 1, 1])))
    assert found == {"sparser": "supported", "frozen": "supported", "lr_sparser": "supported", "finite": "refuted"}


def test_every_run_diverged_leaves_the_other_claims_unmeasured():
    t = table()
    t.loc[:, ["decrease", "fall", "late_drift", "final"]] = math.nan
    t["diverged"] = True
    v = verdicts(t)
    assert [(x.outcome, x.n) for x in v[:3]] == [("inconclusive", 0)] * 3 and v[3].outcome == "refuted"


def test_the_rate_claim_compares_adjacent_rates_at_every_depth():
    t = table()
    t.loc[(t["n_layers"] == 3) & (t["lr"] == 0.5) & (t["layer"] == 0), "final"] = 2.5  # the largest rate: higher
    assert outcomes(verdicts(t))["lr_sparser"] == "refuted"


def test_curve_stats():
    s = curve_stats([2.0, 1.0, 1.2, 1.1, 1.15, 1.1, 1.12, 1.1])
    assert s["decrease"] == pytest.approx(0.9) and s["fall"] == pytest.approx(1.0)
    assert s["late_drift"] == pytest.approx(0.02) and s["min"] == 1.0 and s["final"] == 1.1


def test_a_diverging_run_is_marked_not_dropped():
    tiny = TextTraining(steps=4, batch=2, n_ctx=16, d_model=16, records=4, clip=None)
    rec = train_text(1, lr=1e12, seed=0, cfg=tiny)
    assert rec["diverged_at"] is not None and 1 <= rec["diverged_at"] <= 4
    ok = train_text(1, lr=0.1, seed=0, cfg=dataclasses.replace(tiny, steps=2, records=2, clip=1.0))
    assert ok["diverged_at"] is None and ok["step"] == [0, 1, 2] and len(ok["entropy"]) == 1


def test_quick_pipeline(tmp_path):
    t = check_quick(STUDY, tmp_path, ["n_layers", "lr", "seed", "layer", "decrease", "fall", "late_drift", "final",
                                      "diverged", "val_loss"], rows=12, figures=["text_attention_entropy.png"])
    assert sorted(t.groupby("n_layers")["layer"].max().tolist()) == [0, 2]
