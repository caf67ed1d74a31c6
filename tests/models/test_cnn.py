"""probe.CNN: shapes, per-stage hooks, errors, and the loss falls when training."""

import pytest
import torch

from probe.config import CNNConfig
from probe.data.images import digits
from probe.models.cnn import CNN


def test_hooks_and_shapes():
    model = CNN(CNNConfig(widths=(4, 8, 12), blocks_per_stage=2, seed=0)).eval()
    logits, cache = model.run_with_cache(torch.rand(3, 1, 8, 8))
    assert logits.shape == (3, 10)
    assert cache["hook_stem"].shape == (3, 4, 8, 8)
    assert cache["stages.0.hook_out"].shape == (3, 4, 8, 8)
    assert cache["stages.1.blocks.1.hook_conv1"].shape == (3, 8, 4, 4)
    assert cache["stages.2.hook_out"].shape == (3, 12, 2, 2)
    assert cache["hook_pooled"].shape == (3, 12)
    torch.testing.assert_close(cache["hook_pooled"], cache["stages.2.hook_out"].mean((2, 3)))
    assert (cache["stages.1.hook_out"] >= 0).all()  # each block ends in a ReLU


def test_any_image_size_and_channels():
    model = CNN(CNNConfig(n_channels=3, n_classes=4, seed=0)).eval()
    assert model(torch.rand(2, 3, 11, 7)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"1 channels .* n_channels=3"):
        model(torch.rand(2, 1, 8, 8))
    with pytest.raises(TypeError, match="CNNConfig"):
        CNN({"widths": (4,)})


def test_loss_falls_when_training():
    data = digits("train")
    images, labels = data.images[:32], data.labels[:32]
    model = CNN(CNNConfig(widths=(8, 16), seed=0)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(images, labels, return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_shipped_checkpoint():
    from probe.checkpoint import load, read_meta

    model = load("checkpoints/cnn_digits")
    test = digits("test")
    with torch.no_grad():
        acc = (model(test.images).argmax(-1) == test.labels).float().mean().item()
    assert acc >= 0.95
    assert abs(acc - read_meta("checkpoints/cnn_digits")["metrics"]["test_accuracy"]) < 1e-6
