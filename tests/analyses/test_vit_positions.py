"""analyses.vit_positions: patch shuffling, the position-blindness of a ViT without positions, and a --quick run."""

import json

import torch

from analyses.vit_positions import run, shuffle_patches
from probe.config import ViTConfig
from probe.models.vit import ViT
from probe.nn.patch_embed import patchify


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


def test_quick_run_writes_outputs(tmp_path):
    r = run(out=tmp_path, quick=True)
    assert set(r.accuracy) == {"none", "learned", "sinusoidal_2d"}
    assert r.accuracy["none"] == r.shuffled_accuracy["none"]  # position-blind, measured end to end
    assert r.supported == (r.info_gap > r.form_gap)
    assert json.loads((tmp_path / "metrics.json").read_text())["mean"] == r.mean
    assert (tmp_path / "accuracy_by_position.png").stat().st_size > 0
    assert "Claim under test" in (tmp_path / "report.md").read_text()
