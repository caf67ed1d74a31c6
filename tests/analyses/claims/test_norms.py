"""claims.norms: verdicts on hand-made tables; the dependence measurement on a hand-checkable model; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import _arch, norms
from probe import Transformer, TransformerConfig
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {"bn_depends_on_batch": 5e-4, "bn_depends_on_lengths": 5e-4, "ln_rms_independent": 5e-6,
          "bn_train_eval_gap": 5e-3, "bn_worse_than_ln": 0.1, "rms_matches_ln": 0.05, "rms_op_cheaper": 0.3,
          "rms_step_cheaper": 0.3}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        base = dict(part="train", seed=seed, dep_batch=0.0, dep_lengths=0.0, dep_padding=0.0, train_eval_gap=0.0,
                    final_loss=2.0)
        rows.append({**base, "norm": "LN", "dep_batch": v["ln_rms_independent"][seed]})
        rows.append({**base, "norm": "RMS", "final_loss": 2.0 + v["rms_matches_ln"][seed]})
        rows.append({**base, "norm": "BN", "dep_batch": v["bn_depends_on_batch"][seed],
                     "dep_lengths": v["bn_depends_on_lengths"][seed], "train_eval_gap": v["bn_train_eval_gap"][seed],
                     "final_loss": 2.0 + v["bn_worse_than_ln"][seed]})
        rows.append({**base, "norm": "none", "final_loss": 3.0})
        rows.append(dict(part="timing", seed=seed, norm="LN", op_s=1e-4, step_s=1e-2))
        rows.append(dict(part="timing", seed=seed, norm="RMS", op_s=1e-4 * v["rms_op_cheaper"][seed],
                         step_s=1e-2 * v["rms_step_cheaper"][seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(norms.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(norms.STUDY, build, claim_id, outcome, SCALES)


@pytest.mark.parametrize("norm", ["LN", "BN"])
def test_dependence_is_zero_for_layernorm_and_not_for_batchnorm_in_training_mode(norm):
    model = Transformer(TransformerConfig(arch="decoder", n_layers=1, d_model=16, n_heads=2, d_vocab=80, n_ctx=16,
                                          normalization_type=norm, seed=0))
    data = _arch.text_windows(16, 3, 8, seed=0, split="eval")
    before = [b.clone() for b in model.buffers()]
    dep = norms.dependence(model, data, 8, train_mode=True)
    if norm == "LN":
        assert dep == {"batch": 0.0, "lengths": 0.0, "padding": 0.0}
    else:
        assert dep["batch"] > 1e-3 and dep["lengths"] > 1e-3 and dep["padding"] < 1e-5
        assert norms.dependence(model, data, 8, train_mode=False)["batch"] < 1e-6
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))  # running statistics untouched


def test_quick_run(tmp_path):
    result = quick_run(norms.STUDY, tmp_path, {"norm", "final_loss", "dep_batch", "dep_lengths", "step_s", "op_s"})
    assert set(result.table["norm"]) == set(norms.NORMS)
