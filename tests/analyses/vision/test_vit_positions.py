"""vision.vit_positions: patch shuffling, the position-blindness of a ViT without positions, verdicts on hand-made
tables, the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.vision.vit_positions import STUDY, gaps, shuffle_patches, verdicts
from probe.config import ViTConfig
from probe.models.vit import ViT
from probe.nn.patch_embed import patchify
from tests.analyses.papers.helpers import check_flips, check_quick

HOLDS = {"none": 0.70, "learned": 0.97, "sinusoidal_2d": 0.96}
BREAKS = {
    "positions_matter": {"none": 0.95},  # no positions does as well as the worse scheme
    "form_matters_less": {"sinusoidal_2d": 0.70},  # one scheme is as bad as none
}


def sweep(changes_per_seed):
    return pd.DataFrame([{"positions": p, "seed": seed, "accuracy": changes.get(p, acc) - (0.003 * seed if p == "none"
                                                                                            else 0)}
                         for seed, changes in enumerate(changes_per_seed) for p, acc in HOLDS.items()])


@pytest.mark.parametrize("claim", list(BREAKS))
def test_verdicts(claim):
    check_flips(verdicts, sweep, claim, BREAKS[claim])


def test_gaps_per_seed():
    g = gaps(sweep([{}, {"learned": 0.9}]))
    assert g["info_gap"].tolist() == pytest.approx([0.26, 0.203])
    assert g["form_gap"].tolist() == pytest.approx([0.01, 0.06])
    with pytest.raises(ValueError, match="one row per position scheme"):
        gaps(sweep([{}]).iloc[1:])


def test_shuffle_patches_permutes_patches_only():
    x = torch.rand(3, 2, 8, 6)
    y = shuffle_patches(x, 2, seed=0)
    assert not torch.equal(x, y)
    px, py = patchify(x, 2), patchify(y, 2)
    for b in range(3):  # the same multiset of patches per image
        assert torch.equal(px[b][px[b][:, 0].argsort()], py[b][py[b][:, 0].argsort()])


def test_no_positions_means_blind_to_layout():
    x = torch.rand(4, 1, 8, 8)
    y = shuffle_patches(x, 2, seed=1)
    blind = ViT(ViTConfig(d_model=16, n_heads=2, positional_embedding_type="none", seed=0)).eval()
    torch.testing.assert_close(blind(x), blind(y), atol=1e-5, rtol=1e-5)
    sighted = ViT(ViTConfig(d_model=16, n_heads=2, positional_embedding_type="sinusoidal_2d", seed=0)).eval()
    assert (sighted(x) - sighted(y)).abs().max() > 1e-3


def test_quick_pipeline(tmp_path):
    table = check_quick(STUDY, tmp_path, ["positions", "seed", "accuracy", "shuffled_accuracy", "changed_by_shuffle"],
                        rows=3, figures=["accuracy_by_position.png"])
    none = table[table["positions"] == "none"].iloc[0]
    assert none["changed_by_shuffle"] == 0 and none["accuracy"] == none["shuffled_accuracy"]  # blind, end to end
