"""Shared by the vision studies: the comparable digits ViT and CNN, their training recipe through `probe.Trainer`
(AdamW, linear warm-up then cosine decay, as in Dosovitskiy et al. 2021 §4.1 at a small scale), stratified subsets of
the training set, and accuracy. Inputs always follow the model's device, whatever it is.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from probe.config import CNNConfig, ViTConfig
from probe.data.dataset import DictDataset
from probe.data.images import TensorImageDataset
from probe.train import TrainConfig, Trainer

# About 18k (ViT) and 20k (CNN) parameters on 8x8 digits: comparable budgets, very different inductive biases.
VIT_DIGITS = dict(image_size=8, patch_size=2, n_channels=1, n_classes=10, d_model=32, n_layers=2, n_heads=4, d_mlp=64)
CNN_DIGITS = dict(n_channels=1, n_classes=10, widths=(16, 32), blocks_per_stage=1)
RECIPE = dict(batch_size=64, lr=3e-3, weight_decay=0.05, warmup=0.1)  # warm-up: this share of the steps


def vit_digits(seed: int, **changes) -> ViTConfig:
    return ViTConfig(**{**VIT_DIGITS, "seed": seed, **changes})


def cnn_digits(seed: int, **changes) -> CNNConfig:
    return CNNConfig(**{**CNN_DIGITS, "seed": seed, **changes})


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def stratified_subset(data: TensorImageDataset, fraction: float, seed: int) -> TensorImageDataset:
    """`fraction` of each class (at least one example per class), drawn with `seed`."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1]")
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False))
    return data.subset(np.sort(np.concatenate(keep)))


def train_config(steps: int, seed: int, n_examples: int, device: str | None = None, progress: bool = False,
                 batch_size: int = RECIPE["batch_size"], lr: float = RECIPE["lr"],
                 weight_decay: float = RECIPE["weight_decay"], warmup: float = RECIPE["warmup"],
                 log_every: int | None = None) -> TrainConfig:
    """The recipe every vision model trains with: AdamW, `warmup` of the steps warmed up, then cosine decay to 0,
    gradients clipped at 1; the batch is the whole set when it holds fewer than `batch_size` images. The mean
    training loss is logged every `log_every` steps (default: once, at the end)."""
    return TrainConfig(steps=steps, batch_size=min(batch_size, n_examples), lr=lr, optimizer="adamw",
                       weight_decay=weight_decay, schedule="cosine", warmup_steps=max(1, int(warmup * steps)),
                       seed=seed, device=device, log_every=log_every or steps, progress=progress)


def train(model: nn.Module, data: TensorImageDataset, cfg: TrainConfig) -> Trainer:
    """Train `model` in place through `probe.Trainer` on `data` as dict batches {"images", "labels"}."""
    trainer = Trainer(model, DictDataset(images=data.images, labels=data.labels), None, cfg)
    trainer.fit()
    model.eval()
    return trainer


@torch.no_grad()
def predict(model: nn.Module, images: Float[Tensor, "batch channel height width"],
            batch_size: int = 512) -> Int[Tensor, " batch"]:
    """Predicted classes, computed on the model's device (the images are moved there) and returned there."""
    model.eval()
    device = model_device(model)
    return torch.cat([model(images[i:i + batch_size].to(device)).argmax(-1)
                      for i in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, data: TensorImageDataset) -> float:
    pred = predict(model, data.images)
    return (pred == data.labels.to(pred.device)).float().mean().item()
