"""Train the shipped vision checkpoints on scikit-learn's 8x8 digits through the shared Trainer (CPU, < 2 min each).

    python -m analyses.train_vision_checkpoints --model vit   # -> checkpoints/vit_digits
    python -m analyses.train_vision_checkpoints --model cnn   # -> checkpoints/cnn_digits

Each checkpoint's meta.json records this command, the Trainer config, the parameter count, the fixed-split test
accuracy and the training time. Configs are `analyses.vision_common.VIT_DIGITS` / `CNN_DIGITS` (seed 0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from analyses.vision_common import accuracy, cnn_digits, n_params, vit_digits
from probe.data.images import digits
from probe.models.cnn import CNN
from probe.models.vit import ViT
from probe.train.batches import DictDataset
from probe.train.trainer import TrainConfig, Trainer

RECIPES = {
    "vit": dict(steps=600, batch_size=64, lr=3e-3, weight_decay=0.05, schedule="cosine", warmup_steps=60),
    "cnn": dict(steps=300, batch_size=64, lr=3e-3, weight_decay=0.05, schedule="cosine", warmup_steps=30),
}


def train_checkpoint(which: str, out: str | Path | None = None, steps: int | None = None, progress: bool = True):
    """Train the `which` ("vit" | "cnn") digits model and save it under `out` (default checkpoints/<which>_digits)."""
    if which not in RECIPES:
        raise ValueError(f"which={which!r} is not one of {tuple(RECIPES)}")
    model = ViT(vit_digits(0)) if which == "vit" else CNN(cnn_digits(0))
    train, test = digits("train"), digits("test")
    recipe = {**RECIPES[which], **({"steps": steps} if steps else {})}
    cfg = TrainConfig(**recipe, device="cpu", seed=0, log_every=100, progress=progress)
    start = time.time()
    Trainer(
        model,
        DictDataset(images=train.images, labels=train.labels),
        DictDataset(images=test.images, labels=test.labels),
        cfg,
    ).fit()
    seconds = time.time() - start
    acc = accuracy(model, test)
    out = Path(out or f"checkpoints/{which}_digits")
    command = f"python -m analyses.train_vision_checkpoints --model {which}" + (f" --steps {steps}" if steps else "")
    model.save(
        out,
        meta={
            "command": command,
            "train_config": cfg.to_dict(),
            "step": recipe["steps"],
            "dataset": "sklearn digits 8x8, probe.data.images.digits fixed split (1437 train / 360 test)",
            "n_params": n_params(model),
            "metrics": {"test_accuracy": acc},
            "train_seconds": round(seconds, 1),
        },
    )
    return model, acc, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(RECIPES), required=True)
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny models: intra-op threads only contend
    model, acc, seconds = train_checkpoint(args.model, args.out, args.steps)
    print(f"{args.model}: {n_params(model):,} params, test accuracy {acc:.4f}, trained in {seconds:.0f} s")


if __name__ == "__main__":
    main()
