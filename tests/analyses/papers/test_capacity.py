"""papers.capacity: the task's data and the model's retrieval rules, early stopping on a small case, its verdicts on
hand-made sweeps, and the --quick pipeline."""

import dataclasses

import pandas as pd
import pytest
import torch

from analyses.papers.capacity import SOLVED, STUDY, Config, Retrieval, d_phi, default_S, sample, train_one, verdicts
from probe.ops.linear_attention import causal_linear_attention
from tests.analyses.papers.helpers import check_flips, check_quick

OK, BAD = 1e-4, 0.2
HOLDS = {  # (setting, method, rule, S) -> best loss, at d_key = 16: every claim holds
    (1, "linear", "sum", 8): OK, (1, "linear", "sum", 16): 0.05, (1, "linear", "sum", 32): BAD,
    (1, "dpfp1", "sum", 8): OK, (1, "dpfp1", "sum", 16): OK, (1, "dpfp1", "sum", 32): 0.03,
    (1, "dpfp1", "sum", 64): BAD,
    (1, "favor64", "sum", 8): 0.01, (1, "favor64", "sum", 16): 0.1,
    (1, "favor128", "sum", 8): OK, (1, "favor128", "sum", 16): 0.05, (1, "favor128", "sum", 32): BAD,
    (1, "softmax", "sum", 8): OK, (1, "softmax", "sum", 64): OK,
    (2, "dpfp1", "delta", 8): OK, (2, "dpfp1", "sum", 8): BAD,
}
BREAKS = {  # claim -> the changes that refute it
    "small_S_solved": {(1, "linear", "sum", 8): BAD},
    "fails_at_2_d_phi": {(1, "linear", "sum", 32): OK},
    "larger_d_phi_lower_loss": {(1, "dpfp1", "sum", 16): 0.3, (1, "dpfp1", "sum", 32): 0.3},
    "capacity_grows": {(1, "linear", "sum", 16): OK, (1, "dpfp1", "sum", 16): BAD},
    "favor_fails": {(1, "favor64", "sum", 16): OK, (1, "favor128", "sum", 32): OK},
    "favor_more_features": {(1, "favor128", "sum", 8): 0.05, (1, "favor128", "sum", 16): 0.2},
    "softmax_solves": {(1, "softmax", "sum", 64): BAD},
    "delta_beats_sum": {(2, "dpfp1", "delta", 8): BAD, (2, "dpfp1", "sum", 8): OK},
}


def sweep(changes_per_seed):
    rows = []
    for seed, changes in enumerate(changes_per_seed):
        for (setting, method, rule, S), loss in {**HOLDS, **changes}.items():
            loss *= 1 + 0.01 * seed  # seeds differ a little
            rows.append({"setting": setting, "method": method, "rule": rule, "S": S, "seed": seed,
                         "d_phi": d_phi(method, 16), "best_loss": loss, "solved": loss <= SOLVED})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim", list(BREAKS))
def test_verdicts(claim):
    """Every claim holds on HOLDS; each break refutes its claim in every seed, and makes it inconclusive in one."""
    check_flips(verdicts, sweep, claim, BREAKS[claim])


def test_sample_targets_are_the_value_at_the_last_occurrence():
    gen = torch.Generator().manual_seed(0)
    b = sample(2, 6, 50, gen)
    assert b["keys"].shape == (50, 12)
    for i in range(50):
        last = max(j for j in range(12) if b["keys"][i, j] == b["query"][i])
        assert b["target"][i] == b["values"][i, last]
    b = sample(1, 9, 20, gen)
    assert all(sorted(k.tolist()) == list(range(9)) for k in b["keys"])  # setting 1: keys without replacement
    with pytest.raises(ValueError, match="setting=3"):
        sample(3, 4, 2, gen)


def test_d_phi_grids_and_model_shapes():
    assert [d_phi(m, 64) for m in ("linear", "dpfp1", "dpfp3", "favor64", "favor128")] == [64, 128, 384, 128, 256]
    assert [d_phi(m, 16) for m in ("linear", "dpfp2", "favor64", "favor128")] == [16, 64, 32, 64]
    assert default_S("linear", 16) == (8, 16, 32) and default_S("dpfp2", 16) == (8, 16, 32, 64, 128)
    assert default_S("softmax", 16) == (8, 16, 32, 64, 128, 192)
    b = sample(2, 7, 3, torch.Generator().manual_seed(0))
    inputs = {k: b[k] for k in ("keys", "values", "query")}
    for method, rule in [("softmax", "sum"), ("dpfp2", "sum"), ("favor64", "delta")]:
        model = Retrieval(method, 7, rule)
        assert model(**inputs).shape == (3, 7)
        assert model(**b, return_type="loss").shape == ()
    with pytest.raises(ValueError, match="method='relu'"):
        Retrieval("relu", 7)
    with pytest.raises(ValueError, match="softmax"):
        Retrieval("softmax", 7, "delta")
    with pytest.raises(ValueError, match="needs target"):
        Retrieval("linear", 7)(**inputs, return_type="loss")
    model = Retrieval("favor128", 5, d_key=16)
    projection = model.projection(torch.device("cpu"))
    assert projection.shape == (32, 16) and model.phi(torch.randn(2, 16), projection).shape == (2, 64)
    b = sample(1, 5, 4, torch.Generator().manual_seed(1))
    inputs = {k: b[k] for k in ("keys", "values", "query")}
    assert not torch.equal(model(**inputs), model(**inputs))  # features redrawn per forward


def test_sum_rule_retrieval_is_linear_attention_over_the_pairs():
    """The sum-rule model's output equals causal linear attention's last row (with its denominator) with the query
    appended."""
    torch.manual_seed(0)
    model = Retrieval("dpfp1", 5)
    b = sample(1, 5, 2, torch.Generator().manual_seed(1))
    keys, values, query = b["keys"], b["values"], b["query"]
    y = model(keys, values, query)
    x = torch.cat([torch.nn.functional.one_hot(values, 5).float(), model.emb(keys)], -1)
    W_k = torch.cat([model.W_k_value.weight.T, model.W_k_key.weight], 1)  # the paper's W_k on [onehot(v); emb(k)]
    k = x @ W_k.T + model.W_k_key.bias
    torch.testing.assert_close(k, model.keys(keys, values))
    pk, pq = model.phi(k), model.phi(model.W_q(model.emb(query)))
    qs = torch.cat([pk, pq[:, None]], 1)[:, None]  # the query as the last position; its own key is zero
    ks = torch.cat([pk, torch.zeros_like(pq[:, None])], 1)[:, None]
    vs = torch.cat([torch.nn.functional.one_hot(values, 5).float(), torch.zeros(2, 1, 5)], 1)[:, None]
    ref = causal_linear_attention(qs, ks, vs, normalize=True)[:, 0, -1]
    torch.testing.assert_close(y, ref)


def test_training_stops_when_solved_and_the_setup_separates_small_from_large_S():
    """elu+1 with d_key = d_phi = 8 solves S = 4 (and stops there), and stays far from solving S = 32."""
    cfg = Config(d_key=8, lr=1e-2, max_steps=400, eval_every=25, patience=10)
    small = train_one(1, "linear", "sum", 4, 0, cfg)
    assert small["solved"] and small["stop"] == "solved" and small["steps"] < 400, small
    big = train_one(1, "linear", "sum", 32, 0, dataclasses.replace(cfg, max_steps=small["steps"]))
    assert not big["solved"] and big["best_loss"] > 100 * SOLVED and big["steps"] == small["steps"], big


def test_quick_pipeline(tmp_path):
    t = check_quick(STUDY, tmp_path, ["setting", "method", "rule", "S", "seed", "d_phi", "best_loss", "final_loss",
                                      "steps", "solved", "stop", "last_gain"], rows=14,
                    figures=["capacity_setting1.png", "capacity_setting2.png"])
    assert set(t["stop"]) <= {"solved", "plateau", "budget"} and (t["steps"] <= STUDY.quick.max_steps).all()
    assert (t.loc[t["method"] == "linear", "d_phi"] == STUDY.quick.d_key).all()
