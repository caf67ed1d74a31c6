"""papers.mqar: the task's construction, the models, that softmax learns the task, its verdicts on hand-made
sweeps, and the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.papers.mqar import STUDY, Config, d_phi, model_for, mqar_batch, train_and_eval, verdicts
from tests.analyses.papers.helpers import check_flips, check_quick

HOLDS = {"softmax": {4: 1.0, 8: 1.0, 16: 1.0, 32: 1.0}, "linear": {4: 0.99, 8: 0.99, 16: 0.7, 32: 0.55},
         "dpfp": {4: 1.0, 8: 1.0, 16: 1.0, 32: 1.0}, "delta": {4: 0.99, 8: 0.99, 16: 0.98, 32: 0.98}}
BREAKS = {
    "softmax_recalls": {("softmax", 32): 0.5},
    "fixed_state_recalls_small_N": {("delta", 4): 0.5},
    "sum_rule_degrades": {("linear", 32): 0.95, ("linear", 16): 0.95},
    "delta_at_least_sum": {("delta", 32): 0.3},
}


def sweep(changes_per_seed, pairs=(4, 8, 16, 32)):
    rows = []
    for seed, changes in enumerate(changes_per_seed):
        for model, by_n in HOLDS.items():
            for n in pairs:
                acc = changes.get((model, n), by_n[n]) - 0.002 * seed
                rows.append({"model": model, "n_pairs": n, "seed": seed, "d_phi": d_phi(model, 32), "accuracy": acc})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim", list(BREAKS))
def test_verdicts(claim):
    check_flips(verdicts, sweep, claim, BREAKS[claim])


def test_degradation_is_not_measured_below_every_d_phi():
    v = {x.claim.id: x for x in verdicts(sweep([{}] * 3, pairs=(4, 8, 16)))}  # linear's d_phi = 32 is not reached
    assert v["sum_rule_degrades"].outcome == "inconclusive" and v["sum_rule_degrades"].n == 0


def test_mqar_labels_are_the_values_of_the_queried_keys():
    tokens, labels = mqar_batch(5, 8, torch.Generator().manual_seed(0))
    assert tokens.shape == labels.shape == (8, 15)
    for b in range(8):
        pairs = dict(zip(tokens[b, 0:10:2].tolist(), tokens[b, 1:10:2].tolist()))
        assert len(pairs) == 5 and all(k < 32 <= v for k, v in pairs.items())
        assert (labels[b, :10] == -100).all()
        assert [pairs[q] for q in tokens[b, 10:].tolist()] == labels[b, 10:].tolist()
    with pytest.raises(ValueError, match="n_pairs=0"):
        mqar_batch(0, 2, torch.Generator())
    with pytest.raises(ValueError, match="n_pairs=33"):
        mqar_batch(33, 2, torch.Generator())


def test_models_share_width_and_differ_in_mixer():
    ms = {name: model_for(name, 12) for name in ("softmax", "linear", "dpfp", "delta")}
    assert all(m.cfg.d_model == 32 and m.cfg.n_layers == 2 and m.cfg.short_conv > 0 for m in ms.values())
    assert type(ms["softmax"].blocks[0].attn).__name__ == "Attention"
    assert all(type(ms[n].blocks[0].attn).__name__ == "LinearAttention" for n in ("linear", "dpfp", "delta"))
    assert [ms[n].blocks[0].attn.d_phi for n in ("linear", "dpfp")] == [d_phi("linear", 32), d_phi("dpfp", 32)]
    with pytest.raises(ValueError, match="model='gru'"):
        model_for("gru", 12)


def test_softmax_learns_mqar_in_a_few_hundred_steps():
    """The study's precondition: its setup is learnable (chance is 1/32 per query, copying a random in-context
    value 1/8)."""
    assert train_and_eval("softmax", 8, 0, Config(steps=200, batch=32))["accuracy"] >= 0.9


def test_quick_pipeline(tmp_path):
    check_quick(STUDY, tmp_path, ["model", "n_pairs", "seed", "d_phi", "accuracy", "train_loss"], rows=8,
                figures=["mqar.png"])
