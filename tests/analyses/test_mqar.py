"""analyses.mqar: the task's construction, the claim's bounds, that softmax learns the task fast, a --quick run."""

import json

import pytest
import torch

from analyses.mqar import D_MODEL, VOCAB, measure_claims, model_for, mqar_batch, run, train_and_eval


def test_mqar_labels_are_the_values_of_the_queried_keys():
    tokens, labels = mqar_batch(5, 8, torch.Generator().manual_seed(0))
    assert tokens.shape == labels.shape == (8, 15)
    for b in range(8):
        pairs = dict(zip(tokens[b, 0:10:2].tolist(), tokens[b, 1:10:2].tolist()))
        assert len(pairs) == 5 and all(k < VOCAB // 2 <= v for k, v in pairs.items())
        assert (labels[b, :10] == -100).all()
        assert [pairs[q] for q in tokens[b, 10:].tolist()] == labels[b, 10:].tolist()
    with pytest.raises(ValueError, match="n_pairs=0"):
        mqar_batch(0, 2, torch.Generator())
    with pytest.raises(ValueError, match=f"n_pairs={VOCAB // 2 + 1}"):
        mqar_batch(VOCAB // 2 + 1, 2, torch.Generator())


def test_models_share_width_and_differ_in_mixer():
    ms = {name: model_for(name, 12) for name in ("softmax", "linear", "dpfp", "delta")}
    assert all(m.cfg.d_model == D_MODEL and m.cfg.n_layers == 2 and m.cfg.short_conv > 0 for m in ms.values())
    assert type(ms["softmax"].blocks[0].attn).__name__ == "Attention"
    assert all(type(ms[n].blocks[0].attn).__name__ == "LinearAttention" for n in ("linear", "dpfp", "delta"))
    assert [ms[n].blocks[0].attn.d_phi for n in ("linear", "dpfp")] == [D_MODEL, 2 * D_MODEL]
    with pytest.raises(ValueError, match="model='gru'"):
        model_for("gru", 12)


def test_softmax_learns_mqar_in_a_few_hundred_steps():
    """The analysis' precondition: its setup is learnable (chance is 1/32 per query, copying a random in-context
    value 1/8)."""
    assert train_and_eval("softmax", 8, steps=200, batch=32)["accuracy"] >= 0.9


def test_claims_are_bounds_on_the_measured_accuracies():
    # d_model 32: d_phi is 32 for linear and delta, 64 for dpfp
    good = {"softmax": {4: 1.0, 32: 0.95}, "linear": {4: 0.99, 32: 0.3}, "dpfp": {4: 1.0, 64: 0.5},
            "delta": {4: 1.0, 32: 0.5}}
    verdicts = measure_claims(good, d_model=32)
    assert all(verdicts.values()) and len(verdicts) == 7
    bad = {"softmax": {4: 1.0, 32: 0.85}, "linear": {4: 0.99, 32: 0.9}, "dpfp": {4: 1.0, 32: 0.2},
           "delta": {4: 0.8, 32: 0.2}}
    verdicts = measure_claims(bad, d_model=32)
    assert verdicts["softmax_recalls_at_every_N (>= 0.9)"] is False
    assert verdicts["linear_degrades_once_N_reaches_d_phi=32 (by >= 0.2)"] is False
    assert verdicts["delta_recalls_at_N=4 (>= 0.9)"] is False
    assert verdicts["delta_at_least_sum_rule_at_N=32"] is False
    # dpfp's drop at N=32 is below its d_phi = 64: no verdict on its capacity either way
    assert verdicts["dpfp_degrades_once_N_reaches_d_phi=64 (by >= 0.2)"] is None


def test_quick_run(tmp_path):
    res = run(quick=True, models=("softmax", "delta"), out=tmp_path)
    assert set(res.accuracy) == {"softmax", "delta"}
    assert all(0.0 <= a <= 1.0 for by_n in res.accuracy.values() for a in by_n.values())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["runs"]) == 4 and (tmp_path / "mqar.png").exists() and (tmp_path / "report.md").exists()
    report = (tmp_path / "report.md").read_text()
    assert all(f"- {k}: {'supported' if v else 'NOT supported'}" in report for k, v in res.claims.items())
    assert "delta_at_least_sum_rule_at_N=4" not in res.claims  # no linear model in this run


def test_vocab_reaches_the_models_and_the_report(tmp_path):
    res = run(quick=True, models=("dpfp",), out=tmp_path, vocab=12)
    assert "vocabulary 12 (keys [0, 6), values [6, 12))" in (tmp_path / "report.md").read_text()
    assert len(res.runs) == 2
    with pytest.raises(ValueError, match="n_pairs=2 must be in \\[1, 1\\]"):
        run(quick=True, models=("dpfp",), out=tmp_path, vocab=3)
