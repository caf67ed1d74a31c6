"""Scan-and-Snap Figure-6 grid: batched sweep (probe.train.scan_snap_sweep.sweep) against the same runs one by one.

The grid of Tian et al. 2023 (num_last {1,3,5,10} x eta_Z {0.5,1,2,3} x ratio {1,2,5,10} x 10 seeds, 100 iterations,
batch 128, L = 128, default init) runs once batched and once as a Python loop of `train_one` (the hooked model,
autograd, torch.optim.SGD), in the same process; both wall and process-CPU times, their ratio, and the largest
difference of the final Z between the two are written to
benchmarks/results/scan_snap_sweep.json. Target: batched < 180 s on 2 cores.

    python benchmarks/scan_snap_sweep.py [--quick] [--device cuda] [--one-by-one-runs N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from tqdm import tqdm

from analyses.papers.scan_snap.figure6 import Config, grid, spec
from probe.train.scan_snap_sweep import sweep, train_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small grid (for a smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--one-by-one-runs",
        type=int,
        default=None,
        help="time only the first N runs one by one and extrapolate (default: all)",
    )
    parser.add_argument("--out", default="benchmarks/results/scan_snap_sweep.json")
    args = parser.parse_args()
    cfg = Config(num_last=(1, 3), eta_z=(1.0, 3.0), ratios=(1.0, 10.0), iters=10, batch=32, seeds=(1, 2)) \
        if args.quick else Config()
    specs, iters, batch = [spec(v, cfg.init) for v in grid(cfg)], cfg.iters, cfg.batch
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    res = sweep(specs, iters, batch, device=args.device, progress=True)
    batched_s, batched_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    n_one = min(args.one_by_one_runs or len(specs), len(specs))
    # interleave data settings so a partial one-by-one timing is representative of the grid
    order = sorted(range(len(specs)), key=lambda r: (r % 10, r))[:n_one]
    max_diff = 0.0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for r in tqdm(order, desc="one by one"):
        model, _ = train_one(specs[r], iters, batch, device=args.device)
        M = specs[r].cfg.d_vocab
        max_diff = max(max_diff, (model.Z.detach() - res.Z[r, :M, :M]).abs().max().item())
    one_s = (time.perf_counter() - t0) * len(specs) / n_one
    one_cpu = (time.process_time() - cpu0) * len(specs) / n_one
    result = {
        "benchmark": "scan_snap_sweep",
        "grid": "quick" if args.quick else "figure6",
        "runs": len(specs),
        "iters": iters,
        "batch": batch,
        "seq_len": specs[0].cfg.seq_len,
        "batched_wall_s": batched_s,
        "batched_cpu_s": batched_cpu,
        "one_by_one_wall_s": one_s,
        "one_by_one_cpu_s": one_cpu,
        "speedup_cpu": one_cpu / batched_cpu,
        "one_by_one_runs_timed": n_one,
        "one_by_one_extrapolated": n_one < len(specs),
        "speedup": one_s / batched_s,
        "max_abs_diff_Z": max_diff,
        "target_batched_s": 180.0,
        "meets_target": batched_s < 180.0,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cpu_count": __import__("os").cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
