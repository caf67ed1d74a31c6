"""Tokens per second of `probe.train.Trainer` against a minimal hand-written loop, same model and data, same run.

Both loops: AdamW, gradient clipping at 1.0, bf16 autocast on CUDA, batches gathered from the same DictDataset
in a seeded random order, `model(**batch, return_type="loss")`. The runs alternate (trainer, hand, trainer, ...)
and each side reports its median; the target is trainer / hand >= 0.95.

    python benchmarks/train_throughput.py [--quick] [--device cpu] [--out benchmarks/results/train_throughput.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from probe.config import TransformerConfig
from probe.models.transformer import Transformer
from probe.train import DictDataset, TrainConfig, Trainer, select_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_loop(model: torch.nn.Module, data: DictDataset, steps: int, batch_size: int, device: torch.device) -> float:
    """The reference: the few lines anyone would write. Returns seconds."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        idx = order[(step * batch_size) % (len(data) - batch_size + 1):][:batch_size]
        batch = {k: v.to(device, non_blocking=True) for k, v in data[idx].items()}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch, return_type="loss")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - start


def trainer_loop(model: torch.nn.Module, data: DictDataset, steps: int, batch_size: int, device: torch.device,
                 ) -> float:
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=1e-3, optimizer="adamw", grad_clip=1.0,
                      log_every=steps, progress=False, device=str(device))
    trainer = Trainer(model, data, None, cfg)
    sync(device)
    start = time.perf_counter()
    trainer.fit()
    sync(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, few steps (seconds)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args(argv)
    device = select_device(args.device)
    if args.quick:
        shape = dict(d_model=32, n_layers=1, n_heads=2, n_ctx=32, d_vocab=64)
        batch_size, steps, repeats = 8, 10, args.repeats or 2
    elif device.type == "cuda":
        shape = dict(d_model=512, n_layers=6, n_heads=8, n_ctx=256, d_vocab=4096)
        batch_size, steps, repeats = 32, 60, args.repeats or 5
    else:
        shape = dict(d_model=128, n_layers=2, n_heads=4, n_ctx=64, d_vocab=256)
        batch_size, steps, repeats = 16, 30, args.repeats or 3
    cfg = TransformerConfig(seed=0, **shape)
    base = Transformer(cfg).to(device)
    g = torch.Generator().manual_seed(0)
    data = DictDataset(tokens=torch.randint(0, cfg.d_vocab, (batch_size * (steps + 1), cfg.n_ctx), generator=g))
    tokens_per_run = steps * batch_size * cfg.n_ctx
    # warm-up both paths (allocator, kernels, lazy imports)
    trainer_loop(copy.deepcopy(base), data, 3, batch_size, device)
    hand_loop(copy.deepcopy(base), data, 3, batch_size, device)
    times: dict[str, list[float]] = {"trainer": [], "hand": []}
    for _ in range(repeats):
        times["trainer"].append(trainer_loop(copy.deepcopy(base), data, steps, batch_size, device))
        times["hand"].append(hand_loop(copy.deepcopy(base), data, steps, batch_size, device))
    tps = {k: tokens_per_run / statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "train_throughput", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "model": shape, "batch_size": batch_size,
        "steps_per_run": steps, "repeats": repeats, "quick": args.quick,
        "tokens_per_s": tps, "seconds": times, "ratio_trainer_over_hand": tps["trainer"] / tps["hand"],
        "target": 0.95,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("device", "tokens_per_s", "ratio_trainer_over_hand")}, indent=2))
    return result


if __name__ == "__main__":
    main()
