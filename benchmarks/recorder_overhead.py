"""What recording costs: the same training run with and without `probe.train.recorder.Recorder`.

A small decoder (2 layers, d_model 64, 4 heads, MLPs, 64 positions) trains on repeated random blocks
(`probe.data.synthetic.induction`) with an eval set; the recorder takes its default measures every 50 steps (train
and eval loss, loss by position, head-detector scores, every attention pattern on its default probe batch, weight
norms), writing to disk as it goes. The runs alternate (plain, recorded, plain, ...), one torch thread each; each side
reports its median wall and CPU time, and the ratio recorded / plain is the recorder's cost (target <= 1.10).
Identical plain runs can differ by more than 10% in CPU time on a shared 2-core machine, so the same cost is also read
inside each recorded run, where that noise cancels: its CPU time over that time less its records' own
(`ratio_cpu_in_run`, the median over the recorded runs).

    python benchmarks/recorder_overhead.py [--quick] [--every 50] [--out benchmarks/results/recorder_overhead.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from probe.config import TransformerConfig
from probe.data import synthetic
from probe.models.transformer import Transformer
from probe.train import Recorder, TrainConfig, Trainer


class TimedRecorder(Recorder):
    """A Recorder that adds up the CPU time of its own records (`on_step`: measuring and writing)."""

    cpu = 0.0

    def on_step(self, trainer, step: int) -> None:
        start = time.process_time()
        super().on_step(trainer, step)
        self.cpu += time.process_time() - start


def run(model: Transformer, data, eval_data, steps: int, every: int | None, out: Path | None
        ) -> tuple[float, float, float]:
    """(wall, cpu, recorder cpu) seconds of one training run; with `every`, recorded into `out`."""
    callbacks = [TimedRecorder(out, every=every)] if every else []
    cfg = TrainConfig(steps=steps, batch_size=32, lr=1e-3, progress=False, device="cpu")
    trainer = Trainer(model, data, eval_data, cfg, callbacks=callbacks)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit()
    return time.perf_counter() - wall, time.process_time() - cpu, sum(c.cpu for c in callbacks)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps (seconds)")
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/recorder_overhead.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps = args.steps or (60 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 5)
    task = {"n_symbols": 32, "max_block": 16, "length": 64}
    cfg = TransformerConfig(d_model=64, n_layers=2, n_heads=4, seed=0, **synthetic.task_model_fields("induction",
                                                                                                      **task))
    base = Transformer(cfg)
    data = synthetic.induction(4096, seed=0, **task)
    eval_data = synthetic.induction(256, seed=1, **task)
    times: dict[str, list[tuple[float, float, float]]] = {"plain": [], "recorded": []}
    with tempfile.TemporaryDirectory() as tmp:
        run(copy.deepcopy(base), data, eval_data, 5, None, None)  # warm-up: allocator, lazy imports
        run(copy.deepcopy(base), data, eval_data, 5, 2, Path(tmp) / "warm")
        for i in range(repeats):
            times["plain"].append(run(copy.deepcopy(base), data, eval_data, steps, None, None))
            times["recorded"].append(run(copy.deepcopy(base), data, eval_data, steps, args.every,
                                         Path(tmp) / f"rec{i}"))
        size = sum(f.stat().st_size for f in (Path(tmp) / "rec0").rglob("*") if f.is_file())
    wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    # the same cost read inside each recorded run: its CPU time over that time less the records' own
    in_run = statistics.median(c / (c - r) for _, c, r in times["recorded"])
    result = {
        "benchmark": "recorder_overhead", "device": "cpu", "device_name": platform.processor(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
        "model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "n_ctx": cfg.n_ctx, "d_vocab": cfg.d_vocab},
        "batch_size": 32, "steps": steps, "every": args.every, "records": len(range(0, steps, args.every)) + 1,
        "repeats": repeats, "quick": args.quick, "recording_bytes": size,
        "seconds_wall": {k: [t[0] for t in v] for k, v in times.items()},
        "seconds_cpu": {k: [t[1] for t in v] for k, v in times.items()},
        "seconds_cpu_in_records": [t[2] for t in times["recorded"]],
        "ratio_wall": wall["recorded"] / wall["plain"], "ratio_cpu": cpu["recorded"] / cpu["plain"],
        "ratio_cpu_in_run": in_run,
        "target": 1.10,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ratio_wall", "ratio_cpu", "ratio_cpu_in_run", "load_average",
                                             "recording_bytes")},
                     indent=2))
    return result


if __name__ == "__main__":
    main()
