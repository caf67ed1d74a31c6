"""papers.scan_snap.transformer: the hook reader on a hand-computed case, its verdicts on hand-made tables, and the
--quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.papers.scan_snap._common import Measure, token_attention
from analyses.papers.scan_snap.transformer import STUDY, verdicts
from probe import Transformer, TransformerConfig
from probe.train import TrainConfig, Trainer
from tests.analyses.papers.helpers import check_quick, outcomes

GOOD = {"rise": [0.3, 0.35, 0.32], "fall": [0.4, 0.45, 0.42], "speed": [0.05, 0.06, 0.04],
        "denser": [0.1, 0.12, 0.11], "earlier": [-12.0, -14.0, -10.0]}


def table(**per_seed):
    v = {**GOOD, **per_seed}
    rows = []
    for seed in range(3):
        rows.append({"ratio": 1.0, "seed": seed, "distinct_rise": v["rise"][seed] + 0.1,
                     "common_fall": v["fall"][seed] + 0.1, "final_speed_over_peak": v["speed"][seed] / 2,
                     "entropy_end": 1.0, "snap_step": 60.0})
        rows.append({"ratio": 5.0, "seed": seed, "distinct_rise": v["rise"][seed], "common_fall": v["fall"][seed],
                     "final_speed_over_peak": v["speed"][seed], "entropy_end": 1.0 + v["denser"][seed],
                     "snap_step": 60.0 + v["earlier"][seed]})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("claim", "key", "refuted", "inconclusive"), [
    ("scan_distinct", "rise", [-0.3, -0.2, -0.25], [0.3, -0.3, 0.0]),
    ("scan_common", "fall", [-0.3, -0.2, -0.25], [0.3, -0.3, 0.0]),
    ("snap", "speed", [0.5, 0.6, 0.7], [0.05, 0.4, 0.2]),
    ("denser", "denser", [-0.1, -0.12, -0.11], [0.1, -0.1, 0.0]),
    ("earlier", "earlier", [12.0, 14.0, 10.0], [-12.0, 12.0, 0.0]),
])
def test_verdicts(claim, key, refuted, inconclusive):
    assert outcomes(verdicts(table()))[claim] == "supported"
    assert outcomes(verdicts(table(**{key: refuted})))[claim] == "refuted"
    assert outcomes(verdicts(table(**{key: inconclusive})))[claim] == "inconclusive"


def test_token_attention_with_uniform_attention_counts_tokens():
    """W_Q = 0: every score is equal, so the last position attends uniformly to all L positions and the per-token
    sum is each token's count / L."""
    model = Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, attn_only=True, d_vocab=6, n_ctx=5,
                                          positional_embedding_type="none", seed=0))
    with torch.no_grad():
        model.blocks[0].attn.W_Q.zero_()
        model.blocks[0].attn.b_Q.zero_()
    tokens = torch.tensor([[1, 1, 2, 5, 1], [0, 3, 3, 3, 3]])
    expected = torch.tensor([[0, 3, 1, 0, 0, 1], [1, 0, 0, 4, 0, 0]]) / 5
    torch.testing.assert_close(token_attention(model, tokens), expected)


def test_measure_records_before_training_every_n_steps_and_at_the_end():
    model = Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=1, d_vocab=6, n_ctx=5, dropout=0.1, seed=0))
    measure = Measure(lambda m: m.training, every=3)
    data = iter(lambda: {"tokens": torch.randint(6, (4, 5))}, None)
    Trainer(model, data, None, TrainConfig(steps=7, log_every=7, progress=False), callbacks=[measure]).fit()
    assert measure.steps == [0, 3, 6, 7] and measure.values == [False] * 4 and model.training


def test_quick_pipeline(tmp_path):
    check_quick(STUDY, tmp_path, ["ratio", "seed", "distinct_rise", "common_fall", "final_speed_over_peak",
                                  "entropy_end", "snap_step", "train_loss"], rows=2,
                figures=["transformer_attention.png"])
