"""probe.data.images: the fixed digits split, items, collate, and clear errors for what would need a download."""

import importlib.util

import pytest
import torch
from torch.utils.data import DataLoader

from probe.data import images as im


def test_digits_items_and_split():
    train, test = im.digits("train"), im.digits("test")
    assert (len(train), len(test)) == (1437, 360)
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32 and isinstance(label, int)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0 and train.images.max() > 0.9
    idx = im.digits_split_indices()
    assert not set(idx["train"]) & set(idx["test"]) and len(set(idx["train"]) | set(idx["test"])) == 1797
    # stratified: every class in the test split, 34 to 38 of each
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


def test_digits_split_is_fixed():
    a, b = im.digits("test"), im.digits("test")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_bad_split():
    with pytest.raises(ValueError, match="split='val'"):
        im.digits("val")


def test_collate_gives_model_batches():
    batch = next(iter(DataLoader(im.digits("test"), batch_size=5, collate_fn=im.collate_images)))
    assert batch["images"].shape == (5, 1, 8, 8) and batch["labels"].dtype == torch.long


def test_torchvision_sets_never_download(tmp_path):
    if importlib.util.find_spec("torchvision") is None:
        with pytest.raises(ImportError, match="need torchvision"):
            im.mnist(tmp_path)
    else:
        with pytest.raises(FileNotFoundError, match="never downloads"):
            im.cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        im.image_folder(tmp_path / "missing")
