"""analyses.cnn_vs_vit: stratified subsets, comparable model sizes, and a --quick run."""

import json

import pytest
import torch

from analyses.cnn_vs_vit import run
from analyses.vision_common import cnn_digits, n_params, stratified_subset, vit_digits
from probe.data.images import digits
from probe.models.cnn import CNN
from probe.models.vit import ViT


def test_stratified_subset():
    train = digits("train")
    sub = stratified_subset(train, 0.1, seed=0)
    counts = torch.bincount(sub.labels, minlength=10)
    assert counts.min() >= 13 and counts.max() <= 16 and len(sub) == counts.sum()
    assert torch.equal(sub.images, stratified_subset(train, 0.1, seed=0).images)
    assert not torch.equal(sub.images, stratified_subset(train, 0.1, seed=1).images)
    assert len(stratified_subset(train, 0.001, seed=0)) == 10  # at least one per class
    with pytest.raises(ValueError, match="fraction=0"):
        stratified_subset(train, 0, seed=0)


def test_models_have_similar_parameter_counts():
    cnn, vit = n_params(CNN(cnn_digits(0))), n_params(ViT(vit_digits(0)))
    assert 0.8 < cnn / vit < 1.25


def test_quick_run_writes_outputs(tmp_path):
    r = run(out=tmp_path, quick=True)
    assert len(r.n_train) == len(r.fractions) == len(r.gap) and r.n_train[-1] == 1437
    for name in ("cnn", "vit"):
        assert all(0.0 <= a <= 1.0 for row in r.accuracy[name] for a in row)
    assert r.supported == (r.gap[0] > 0 and r.gap[0] > r.gap[-1])
    assert json.loads((tmp_path / "metrics.json").read_text())["gap"] == r.gap
    assert (tmp_path / "accuracy_vs_data.png").stat().st_size > 0
    assert "Claim under test" in (tmp_path / "report.md").read_text()
