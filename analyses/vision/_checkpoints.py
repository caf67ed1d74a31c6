"""Train the shipped digits checkpoints with the vision studies' recipe (`_common.train_config`, through
`probe.Trainer`, seed 0, CPU):

    python -m analyses.vision._checkpoints --model vit   # -> checkpoints/vit_digits (vit_attention's ViT, seed 0)
    python -m analyses.vision._checkpoints --model cnn   # -> checkpoints/cnn_digits (cnn_vs_vit's CNN, all images)

Each checkpoint's meta.json records the exact command, the Trainer config, the data, the parameter count, the test
accuracy on the fixed split and the training time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from analyses.vision._common import accuracy, cnn_digits, n_params, train, train_config, vit_digits
from analyses.vision.cnn_vs_vit import Config as CNNvsViTConfig
from analyses.vision.vit_attention import RECIPE_STEPS
from probe.data.images import digits
from probe.models.cnn import CNN
from probe.models.vit import ViT

STEPS = {"vit": RECIPE_STEPS, "cnn": CNNvsViTConfig().steps}


def train_checkpoint(which: str, out: str | Path | None = None, command: str | None = None):
    """Train the `which` ("vit" | "cnn") digits model (seed 0) and save it under `out` (default
    checkpoints/<which>_digits); returns (model, test accuracy, seconds)."""
    if which not in STEPS:
        raise ValueError(f"which={which!r} is not one of {tuple(STEPS)}")
    model = ViT(vit_digits(0)) if which == "vit" else CNN(cnn_digits(0))
    train_set, test = digits("train"), digits("test")
    cfg = train_config(STEPS[which], seed=0, n_examples=len(train_set), device="cpu")
    start = time.perf_counter()
    train(model, train_set, cfg)
    seconds = time.perf_counter() - start
    acc = accuracy(model, test)
    out = Path(out or f"checkpoints/{which}_digits")
    model.save(out, meta={
        "command": command or f"python -m analyses.vision._checkpoints --model {which}",
        "train_config": cfg.to_dict(), "step": cfg.steps, "n_params": n_params(model),
        "dataset": "scikit-learn digits 8x8, probe.data.images.digits: the fixed stratified split (1437 train, 360 "
                   "test), every training image, batches {'images', 'labels'} in the Trainer's seeded order",
        "metrics": {"test_accuracy": acc}, "train_seconds": round(seconds, 1)})
    return model, acc, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(STEPS), required=True)
    parser.add_argument("--out", default=None, help="default checkpoints/<model>_digits")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: intra-op threads only contend
    command = "python -m analyses.vision._checkpoints " + shlex.join(sys.argv[1:] if argv is None else argv)
    model, acc, seconds = train_checkpoint(args.model, args.out, command)
    print(f"{args.model}: {n_params(model):,} params, test accuracy {acc:.4f}, trained in {seconds:.0f} s")


if __name__ == "__main__":
    main()
