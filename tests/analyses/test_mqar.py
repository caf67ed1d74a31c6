"""analyses.mqar: the task's construction and a --quick run."""

import json

import pytest
import torch

from analyses.mqar import VOCAB, model_for, mqar_batch, run


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


def test_models_share_width_and_differ_in_mixer():
    ms = {name: model_for(name, 12) for name in ("softmax", "delta")}
    assert all(m.cfg.d_model == 64 and m.cfg.n_layers == 2 for m in ms.values())
    assert type(ms["delta"].blocks[0].attn).__name__ == "LinearAttention"


def test_quick_run(tmp_path):
    res = run(quick=True, models=("softmax", "delta"), out=tmp_path)
    assert set(res.accuracy) == {"softmax", "delta"}
    assert all(0.0 <= a <= 1.0 for by_n in res.accuracy.values() for a in by_n.values())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["runs"]) == 4 and (tmp_path / "mqar.png").exists() and (tmp_path / "report.md").exists()
