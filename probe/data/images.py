"""Image datasets for the ViT and CNN: scikit-learn's 8x8 digits offline, torchvision sets when present locally.

`digits(split)` is real data that ships with scikit-learn (1797 8x8 grey images of handwritten digits, UCI
"Optical Recognition of Handwritten Digits", Alpaydin and Kaynak 1998), split once into a fixed stratified
train/test partition (80/20, seed 0). Pixels are scaled from 0..16 to [0, 1].
MNIST, CIFAR-10 and ImageFolder go through torchvision with `download=False`: they never touch the network and
fail with a message that says what is missing and where it was looked for.

Items are `(image [channel height width] float32, label int)`; `collate_images` turns a list of them into the
batch dict every probe model takes, `{"images": [batch channel height width], "labels": [batch]}`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from torch.utils.data import Dataset

SPLITS = ("train", "test")
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class TensorImageDataset(Dataset):
    """An in-memory image dataset: `images[i], int(labels[i])`. `.images` / `.labels` give the whole set at once."""

    def __init__(
        self,
        images: Float[Tensor, "n channel height width"],
        labels: Int[Tensor, " n"],
        classes: list[str] | None = None,
    ) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"images has {images.shape[0]} items but labels has {labels.shape[0]}")
        self.images = images
        self.labels = labels
        self.classes = classes if classes is not None else [str(c) for c in range(int(labels.max()) + 1)]

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images[i], int(self.labels[i])

    def subset(self, indices: Tensor | np.ndarray | list[int]) -> TensorImageDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return TensorImageDataset(self.images[idx], self.labels[idx], self.classes)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits (cached, read-only): float32 [n, 1, 8, 8] in [0, 1], int64 labels; scikit-learn's order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = (bunch.images.astype(np.float32) / 16.0)[:, None], bunch.target.astype(np.int64)
    images.setflags(write=False)  # cached and shared: read-only
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=1)
def _split_indices() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, labels = digits_arrays()
    train, test = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    return np.sort(train), np.sort(test)


def digits_split_indices() -> dict[str, np.ndarray]:
    """The fixed stratified split: indices into `digits_arrays()` for "train" (1437) and "test" (360)."""
    train, test = _split_indices()
    return {"train": train.copy(), "test": test.copy()}


def digits(split: str = "train") -> TensorImageDataset:
    """scikit-learn's 8x8 handwritten digits: items `(image [1, 8, 8] float in [0, 1], label in 0..9)`."""
    _check_split(split)
    images, labels = digits_arrays()
    idx = digits_split_indices()[split]
    return TensorImageDataset(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))


def collate_images(items: list[tuple[Tensor, int]]) -> dict[str, Tensor]:
    """DataLoader collate: a list of `(image, label)` -> `{"images": [batch c h w], "labels": [batch]}`."""
    images = torch.stack([img for img, _ in items])
    labels = torch.tensor([int(label) for _, label in items], dtype=torch.long)
    return {"images": images, "labels": labels}


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError as e:
        raise ImportError(
            "MNIST / CIFAR-10 / ImageFolder need torchvision, which is not installed "
            "(pip install torchvision matching your torch); probe.data.images.digits() works without it"
        ) from e
    return torchvision


def _to_tensor(image: Any) -> Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def _local(cls_name: str, root: str | Path, split: str, **kwargs: Any) -> Any:
    _check_split(split)
    cls = getattr(_torchvision().datasets, cls_name)
    try:
        return cls(str(root), train=split == "train", download=False, transform=_to_tensor, **kwargs)
    except RuntimeError as e:
        raise FileNotFoundError(
            f"{cls_name} is not present under root={str(root)!r} and probe never downloads at run time ({e}). "
            f"Fetch it once elsewhere with torchvision.datasets.{cls_name}(root, download=True) and copy it here."
        ) from e


def mnist(root: str | Path, split: str = "train") -> Dataset:
    """torchvision MNIST from a local copy: items `(image [1, 28, 28] in [0, 1], label)`; never downloads."""
    return _local("MNIST", root, split)


def cifar10(root: str | Path, split: str = "train") -> Dataset:
    """torchvision CIFAR-10 from a local copy: items `(image [3, 32, 32] in [0, 1], label)`; never downloads."""
    return _local("CIFAR10", root, split)


def image_folder(root: str | Path) -> Dataset:
    """torchvision ImageFolder (root/class_name/*.png): items `(image [c h w] in [0, 1], class index)`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image_folder root={str(root)!r} is not a directory (expected root/<class>/<image>)")
    return _torchvision().datasets.ImageFolder(str(root), transform=_to_tensor)
