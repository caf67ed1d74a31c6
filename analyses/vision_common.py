"""Shared pieces of the vision analyses: the comparable ViT / CNN configs, a small fast training loop for sweeps of
many tiny models on in-memory tensors (AdamW, linear warm-up then cosine decay), stratified subsets and accuracy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from probe.config import CNNConfig, ViTConfig
from probe.data.images import TensorImageDataset, digits
from probe.hooked import HookedModel
from probe.models.vit import ViT

# About 18k (ViT) and 20k (CNN) parameters on 8x8 digits: comparable budgets, very different inductive biases.
VIT_DIGITS = dict(image_size=8, patch_size=2, n_channels=1, n_classes=10, d_model=32, n_layers=2, n_heads=4, d_mlp=64)
CNN_DIGITS = dict(n_channels=1, n_classes=10, widths=(16, 32), blocks_per_stage=1)


def vit_digits(seed: int, **changes) -> ViTConfig:
    return ViTConfig(**{**VIT_DIGITS, "seed": seed, **changes})


def cnn_digits(seed: int, **changes) -> CNNConfig:
    return CNNConfig(**{**CNN_DIGITS, "seed": seed, **changes})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def train_classifier(
    model: HookedModel,
    data: TensorImageDataset,
    steps: int,
    lr: float = 3e-3,
    batch_size: int = 64,
    weight_decay: float = 0.05,
    seed: int = 0,
    warmup: float = 0.1,
) -> list[float]:
    """Train `model` in place for `steps` AdamW steps on minibatches drawn from `data`; return the losses."""
    dev = next(model.parameters()).device
    images, labels = data.images.to(dev), data.labels.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n_warm = max(1, int(warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / n_warm if s < n_warm else 0.5 * (1 + math.cos(math.pi * (s - n_warm) / max(1, steps - n_warm)))
        ),
    )
    gen = torch.Generator().manual_seed(seed)
    bs = min(batch_size, len(labels))
    perm, cursor, losses = torch.randperm(len(labels), generator=gen), 0, []
    model.train()
    for _ in range(steps):
        if cursor + bs > len(perm):
            perm, cursor = torch.randperm(len(labels), generator=gen), 0
        idx = perm[cursor : cursor + bs].to(dev)
        cursor += bs
        with torch.enable_grad():  # callers may sit in no_grad
            loss = model(images[idx], labels[idx], return_type="loss")
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: HookedModel, data: TensorImageDataset, batch_size: int = 512) -> float:
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(data), batch_size):
        logits = model(data.images[i : i + batch_size].to(dev))
        correct += (logits.argmax(-1).cpu() == data.labels[i : i + batch_size]).sum().item()
    return correct / len(data)


def load_or_train_vit(checkpoint: str | Path | None, steps: int, seed: int = 0) -> tuple[ViT, str]:
    """The shipped digits ViT when `checkpoint` holds one, else a fresh one trained for `steps`; plus a description."""
    if checkpoint is not None and (Path(checkpoint) / "config.json").exists():
        from probe.checkpoint import load

        model = load(checkpoint)
        if not isinstance(model, ViT):
            raise TypeError(f"checkpoint={str(checkpoint)!r} holds a {type(model).__name__}, not a probe.ViT")
        return model.to(device()), f"checkpoint {checkpoint}"
    model = ViT(vit_digits(seed)).to(device())
    train_classifier(model, digits("train"), steps=steps, seed=seed)
    return model, f"trained here for {steps} steps (seed {seed}; no checkpoint at {checkpoint})"
