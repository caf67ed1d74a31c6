"""vision.cnn_vs_vit: stratified subsets, comparable model sizes, verdicts on hand-made tables, the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.vision._common import cnn_digits, n_params, stratified_subset, vit_digits
from analyses.vision.cnn_vs_vit import STUDY, gaps, train_and_score, verdicts
from probe.data.images import digits
from probe.models.cnn import CNN
from probe.models.vit import ViT
from tests.analyses.papers.helpers import check_flips, check_quick

SIZES = {0.03: 40, 0.125: 180, 1.0: 1437}
HOLDS = {("cnn", 0.03): 0.80, ("cnn", 0.125): 0.92, ("cnn", 1.0): 0.99,
         ("vit", 0.03): 0.60, ("vit", 0.125): 0.85, ("vit", 1.0): 0.96}  # gaps 0.20, 0.07, 0.03
BREAKS = {
    "cnn_leads_small": {("vit", 0.03): 0.90},  # the ViT leads with little data
    "gap_closes": {("vit", 1.0): 0.70},  # the gap on every image (0.29) exceeds the gap at 40 (0.20)
    "gap_falls_with_data": {("vit", 0.03): 0.79},  # gaps 0.01, 0.07, 0.03: rising with data on a log scale
    "cnn_converges_faster": {("early", "cnn"): 1.2},  # the CNN's early training loss is above the ViT's
}
EARLY = {"cnn": 0.3, "vit": 0.8}  # mean training loss over the second tenth of the steps


def sweep(changes_per_seed):
    rows = []
    for seed, changes in enumerate(changes_per_seed):
        for (model, fraction), acc in HOLDS.items():
            rows.append({"model": model, "fraction": fraction, "seed": seed, "n_train": SIZES[fraction],
                         "n_params": 19706 if model == "cnn" else 18218,
                         "accuracy": changes.get((model, fraction), acc) - (0.004 * seed if model == "vit" else 0),
                         "early_loss": changes.get(("early", model), EARLY[model]) + 0.01 * seed * (model == "cnn")})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim", list(BREAKS))
def test_verdicts(claim):
    check_flips(verdicts, sweep, claim, BREAKS[claim])


def test_gaps_pair_the_models_per_seed_and_size():
    g = gaps(sweep([{}, {}]))
    assert len(g) == 6 and sorted(g["n_train"].unique()) == [40, 180, 1437]
    assert g.loc[(g["seed"] == 1) & (g["fraction"] == 0.03), "gap"].item() == pytest.approx(0.204)
    with pytest.raises(ValueError, match="one row per model"):
        gaps(sweep([{}]).iloc[1:])


def test_steps_must_split_into_tenths():
    with pytest.raises(ValueError, match="steps=15 must be a multiple of 10"):
        train_and_score("cnn", 0.03, 0, 15)


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


def test_quick_pipeline(tmp_path):
    table = check_quick(STUDY, tmp_path, ["model", "fraction", "seed", "n_train", "n_params", "accuracy", "early_loss",
                                          "final_loss"], rows=4, figures=["accuracy_vs_data.png"])
    assert sorted(table["n_train"].unique()) == [40, 1437]
