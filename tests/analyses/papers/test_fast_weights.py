"""papers.fast_weights: the toy stream (sum accumulates, delta replaces), its verdicts on hand-made tables, and the
--quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.papers.fast_weights import CLAIMS, STUDY, TOL, toy, toy_stream, verdicts
from tests.analyses.papers.helpers import check_quick, outcomes


def table(diffs: dict[str, list[float]]):
    """Per claim id, its largest difference per seed (three seeds), spread over two rows each."""
    rows = []
    for claim, per_seed in diffs.items():
        check, bits = claim.split("_") if claim.split("_")[0] in ("forms", "views") else ("toy", "64")
        rule = {"sum_adds": "sum", "delta_replaces": "delta"}.get(claim, "sum")
        for seed, d in enumerate(per_seed):
            for frac in (1.0, 0.1):
                rows.append({"check": check, "dtype": f"float{bits}", "rule": rule, "seed": seed, "diff": d * frac})
    return pd.DataFrame(rows)


def bound(claim_id: str) -> float:
    return next(c.bound for c in CLAIMS if c.id == claim_id)


@pytest.mark.parametrize("claim", [c.id for c in CLAIMS])
@pytest.mark.parametrize(("scale", "outcome"), [((0.1, 0.2, 0.5), "supported"), ((2.0, 5.0, 10.0), "refuted"),
                                                 ((0.1, 2.0, 0.5), "inconclusive")])
def test_verdicts_judge_every_seed_against_the_tolerance(claim, scale, outcome):
    diffs = {c.id: [0.1 * c.bound] * 3 for c in CLAIMS}
    diffs[claim] = [s * bound(claim) for s in scale]
    found = outcomes(verdicts(table(diffs)))
    assert found[claim] == outcome
    assert all(o == "supported" for k, o in found.items() if k != claim)


def test_toy_stream_sum_accumulates_delta_replaces():
    W_sum, keys, values = toy_stream("sum")
    W_delta, _, _ = toy_stream("delta")
    # after writing (k1, v1) then (k1, v4): the sum rule reads v1 + v4, the delta rule reads v4
    assert (W_sum[-1] @ keys[0]).tolist() == (values[0] + values[3]).tolist()
    assert (W_delta[-1] @ keys[0]).tolist() == values[3].tolist()
    assert (W_delta[-1] @ keys[1]).tolist() == values[1].tolist()  # other slots untouched
    W, keys, _ = toy_stream("delta", seed=3)
    torch.testing.assert_close(keys[:3] @ keys[:3].T, torch.eye(3, dtype=torch.float64))  # orthonormal keys
    assert toy("sum", 3)["diff"] < 1e-12 and toy("delta", 3)["diff"] < 1e-12


def test_quick_pipeline(tmp_path):
    t = check_quick(STUDY, tmp_path, ["check", "feature_map", "rule", "dtype", "L", "chunk", "form", "seed", "diff",
                                      "out_diff", "grad_diff"], figures=["fast_weights.png", "equivalence.png"])
    eq = t[t["check"] != "toy"]
    assert set(eq["form"]) == {"parallel", "chunked", "fast_weight"} and set(eq["dtype"]) == set(TOL)
    assert (eq["L"] % eq["chunk"] != 0).all()  # chunk sizes that do not divide the length
    assert len(t[t["check"] == "toy"]) == 2
