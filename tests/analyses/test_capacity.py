"""analyses.capacity: the task's data, the model's retrieval rules, and a --quick run with its metrics schema."""

import json
import sys

import pytest
import torch

from analyses import capacity
from analyses.capacity import CapacityResult, Retrieval, d_phi, default_S, sample, summarise, train_one


def test_sample_targets_are_the_value_at_the_last_occurrence():
    gen = torch.Generator().manual_seed(0)
    keys, values, query, target = sample(2, 6, 50, gen)
    assert keys.shape == (50, 12)
    for b in range(50):
        last = max(i for i in range(12) if keys[b, i] == query[b])
        assert target[b] == values[b, last]
    keys, _, query, _ = sample(1, 9, 20, gen)
    assert all(sorted(k.tolist()) == list(range(9)) for k in keys)  # setting 1: keys without replacement
    with pytest.raises(ValueError, match="setting=3"):
        sample(3, 4, 2, gen)


def test_d_phi_and_model_shapes():
    assert [d_phi(m) for m in ("linear", "dpfp1", "dpfp3", "favor64", "favor128")] == [64, 128, 384, 128, 256]
    gen = torch.Generator().manual_seed(0)
    keys, values, query, _ = sample(2, 7, 3, gen)
    for method, rule in [("softmax", "sum"), ("dpfp2", "sum"), ("favor64", "delta")]:
        assert Retrieval(method, 7, rule)(keys, values, query).shape == (3, 7)
    with pytest.raises(ValueError, match="method='relu'"):
        Retrieval("relu", 7)
    with pytest.raises(ValueError, match="softmax"):
        Retrieval("softmax", 7, "delta")
    # d_phi scales with d_key (the default sweep's d_key = 16); one S grid for all, each method up to 2 d_phi
    assert [d_phi(m, 16) for m in ("linear", "dpfp2", "favor64", "favor128")] == [16, 64, 32, 64]
    assert default_S("linear", 16) == (8, 16, 32) and default_S("dpfp2", 16) == (8, 16, 32, 64, 128)
    assert default_S("softmax", 16) == (8, 16, 32, 64, 128, 192)
    model = Retrieval("favor128", 5, d_key=16)
    projection = model.projection(torch.device("cpu"))
    assert projection.shape == (32, 16) and model.phi(torch.randn(2, 16), projection).shape == (2, 64)
    keys, values, query, _ = sample(1, 5, 4, gen)
    assert not torch.equal(model(keys, values, query), model(keys, values, query))  # features redrawn per forward


def test_sum_rule_solves_below_d_phi_and_not_far_beyond_it():
    """Claim on a small setting: elu+1 with d_key = d_phi = 8 solves S = 4 and stays far from solving S = 32."""
    torch.set_num_threads(1)
    small = train_one(1, "linear", "sum", 4, max_steps=400, eval_every=25, patience=10, lr=1e-2, d_key=8)
    assert small["solved"] and small["stop"] == "solved", small["best_loss"]
    big = train_one(1, "linear", "sum", 32, max_steps=small["steps"], eval_every=25, patience=10, lr=1e-2, d_key=8)
    assert not big["solved"] and big["best_loss"] > 100 * capacity.SOLVED, big["best_loss"]


def test_sum_rule_retrieval_is_linear_attention_over_the_pairs():
    """The sum-rule model's output equals causal linear attention's last row (with its denominator) with the query
    appended."""
    from probe.ops.linear_attention import causal_linear_attention

    torch.manual_seed(0)
    model = Retrieval("dpfp1", 5)
    keys, values, query, _ = sample(1, 5, 2, torch.Generator().manual_seed(1))
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


def run_record(method: str, S: int, loss: float, setting: int = 1, rule: str = "sum") -> dict:
    return dict(setting=setting, method=method, rule=rule, S=S, d_phi=d_phi(method, 16), best_loss=loss,
                solved=loss <= capacity.SOLVED)


def test_claims_are_read_off_the_runs():
    """summarise's verdicts on hand-made sweeps: one where every claim holds, then one break per claim."""
    ok, bad = 1e-4, 0.2
    holds = [run_record("linear", 8, ok), run_record("linear", 16, 0.05), run_record("linear", 32, bad),
             run_record("dpfp1", 8, ok), run_record("dpfp1", 16, ok), run_record("dpfp1", 32, 0.03),
             run_record("dpfp1", 64, bad),
             run_record("favor64", 8, 0.01), run_record("favor64", 16, 0.1),
             run_record("favor128", 8, ok), run_record("favor128", 16, 0.05), run_record("favor128", 32, 0.2),
             run_record("softmax", 8, ok), run_record("softmax", 64, ok),
             run_record("dpfp1", 8, ok, 2, "delta"), run_record("dpfp1", 8, bad, 2, "sum")]

    def claims(runs):
        res = CapacityResult(runs=runs)
        summarise(res)
        return res.claims

    assert claims(holds) == {"sum_rule_solves_small_S_and_fails_at_2_d_phi": True, "capacity_grows_with_d_phi": True,
                             "favor_retrieves_below_d_phi_over_2": True, "favor_improves_with_m": True,
                             "softmax_solves_every_S": True, "delta_beats_sum_in_setting_2": True}
    breaks = {
        "sum_rule_solves_small_S_and_fails_at_2_d_phi": (0, run_record("linear", 8, bad)),  # fails at small S
        "capacity_grows_with_d_phi": (5, run_record("dpfp1", 32, 0.3)),  # dpfp1 worse than linear at S = 32
        "favor_retrieves_below_d_phi_over_2": (8, run_record("favor64", 16, ok)),  # m = 64 solves S = d_phi / 2
        "favor_improves_with_m": (10, run_record("favor128", 16, 0.2)),
        "softmax_solves_every_S": (13, run_record("softmax", 64, bad)),
        "delta_beats_sum_in_setting_2": (14, run_record("dpfp1", 8, bad, 2, "delta")),
    }
    for claim, (i, replacement) in breaks.items():
        got = claims(holds[:i] + [replacement] + holds[i + 1 :])
        assert got[claim] is False, claim
        assert all(v for k, v in got.items() if k != claim), (claim, got)


def test_quick_cli_writes_the_metrics_schema(tmp_path, monkeypatch):
    argv = [
        "capacity",
        "--quick",
        "--setting",
        "1",
        "2",
        "--methods",
        "linear",
        "--rule",
        "sum",
        "delta",
        "--S",
        "8",
        "--out",
        str(tmp_path),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    capacity.main()
    runs = json.loads((tmp_path / "metrics.json").read_text())["runs"]
    assert {(r["setting"], r["rule"]) for r in runs} == {(1, "sum"), (1, "delta"), (2, "sum"), (2, "delta")}
    for r in runs:
        assert {"setting", "method", "rule", "S", "d_phi", "final_loss", "steps"} <= set(r)
        assert r["method"] == "linear" and r["S"] == 8 and r["d_phi"] == 16 and 0 < r["steps"] <= 20
        assert r["final_loss"] < 0.5 + 1e-3  # trained below (or at) the zero-output loss
        assert r["stop"] in ("solved", "plateau", "budget") and r["d_key"] == capacity.DEFAULT_D_KEY
    assert (tmp_path / "capacity_setting1.png").exists() and "largest solved S" in (tmp_path / "report.md").read_text()
