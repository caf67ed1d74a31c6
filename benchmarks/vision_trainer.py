"""Time per run of the vision studies' training through `probe.Trainer` against the private loop it replaced.

The reference is the loop `analyses/vision_common.train_classifier` ran before the vision studies moved onto
`probe.study` (AdamW, LambdaLR warm-up then cosine, minibatches indexed from in-memory tensors, no gradient
clipping); the Trainer runs the studies' recipe (`analyses.vision._common.train_config`: the same AdamW, warm-up and
cosine, plus gradient clipping at 1). Same model, data, steps, batch size and seed; runs alternate (trainer,
reference, ...) and each side reports its median. A second pass splits one reference run's step into data,
forward, backward and optimizer time (where the time goes). Single thread, CPU: what `grid(..., workers=2)` gives
each run.

    python benchmarks/vision_trainer.py [--quick] [--steps 300] [--repeats 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from pathlib import Path

import torch

from analyses.vision._common import cnn_digits, stratified_subset, train, train_config, vit_digits
from probe.data.images import digits
from probe.models.cnn import CNN
from probe.models.vit import ViT


def reference_loop(model, data, steps: int, lr: float = 3e-3, batch_size: int = 64, weight_decay: float = 0.05,
                   seed: int = 0, warmup: float = 0.1, split: dict | None = None) -> float:
    """The former private loop, verbatim but for the optional per-phase timers. Returns seconds."""
    images, labels = data.images, data.labels
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n_warm = max(1, int(warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / n_warm if s < n_warm else 0.5 * (
        1 + math.cos(math.pi * (s - n_warm) / max(1, steps - n_warm))))
    gen = torch.Generator().manual_seed(seed)
    bs = min(batch_size, len(labels))
    perm, cursor = torch.randperm(len(labels), generator=gen), 0
    model.train()
    clock = time.perf_counter
    start = clock()
    for _ in range(steps):
        t0 = clock()
        if cursor + bs > len(perm):
            perm, cursor = torch.randperm(len(labels), generator=gen), 0
        idx = perm[cursor: cursor + bs]
        cursor += bs
        x, y = images[idx], labels[idx]
        t1 = clock()
        loss = model(x, y, return_type="loss")
        t2 = clock()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = clock()
        opt.step()
        sched.step()
        loss.item()
        t4 = clock()
        if split is not None:
            for k, a, b in (("data", t0, t1), ("forward", t1, t2), ("backward", t2, t3), ("optimizer", t3, t4)):
                split[k] = split.get(k, 0.0) + b - a
    return clock() - start


def trainer_run(model, data, steps: int) -> float:
    cfg = train_config(steps, seed=0, n_examples=len(data), device="cpu")
    start = time.perf_counter()
    train(model, data, cfg)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps, 1 repeat (seconds)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/vision_trainer.json")
    args = parser.parse_args(argv)
    steps, repeats = (20, 1) if args.quick else (args.steps, args.repeats)
    torch.set_num_threads(1)
    full = digits("train")
    cases = {"vit_full": (ViT(vit_digits(0)), full), "cnn_full": (CNN(cnn_digits(0)), full),
             "vit_6pct": (ViT(vit_digits(0)), stratified_subset(full, 0.06, 0))}
    results = {}
    for name, (base, data) in cases.items():
        trainer_run(copy.deepcopy(base), data, 3)  # warm-up both paths
        reference_loop(copy.deepcopy(base), data, 3)
        times: dict[str, list[float]] = {"trainer": [], "reference": []}
        for _ in range(repeats):
            times["trainer"].append(trainer_run(copy.deepcopy(base), data, steps))
            times["reference"].append(reference_loop(copy.deepcopy(base), data, steps))
        split: dict[str, float] = {}
        reference_loop(copy.deepcopy(base), data, steps, split=split)
        med = {k: statistics.median(v) for k, v in times.items()}
        results[name] = {"n_train": len(data), "seconds": times, "median_s": med,
                         "ms_per_step": {k: 1e3 * v / steps for k, v in med.items()},
                         "ratio_trainer_over_reference": med["trainer"] / med["reference"],
                         "reference_ms_per_step_by_phase": {k: 1e3 * v / steps for k, v in split.items()}}
    out = {"benchmark": "vision_trainer", "torch": torch.__version__, "threads": 1, "steps": steps,
           "repeats": repeats, "quick": args.quick, "cases": results}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: (r["ratio_trainer_over_reference"], r["ms_per_step"], r["reference_ms_per_step_by_phase"])
                      for k, r in results.items()}, indent=1))
    return out


if __name__ == "__main__":
    main()
