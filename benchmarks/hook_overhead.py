"""Hook overhead: probe.Transformer against a plain PyTorch decoder of the same shape, in the same run.

Ratios (targets on CPU): our no-hook forward+backward / plain forward+backward <= 1.05;
`run_with_cache` of every hook / plain forward <= 1.5 (also reported: every hook but `hook_result`, which is what
TransformerLens caches by default). Medians over interleaved repeats. On CPU `run_with_cache` keeps freed memory
for reuse by default (probe/cpu_memory.py); `--glibc-defaults` measures with PROBE_KEEP_FREED_MEMORY=0 instead.

    python benchmarks/hook_overhead.py [--device cuda] [--repeats 15] [--glibc-defaults]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from probe import Transformer, TransformerConfig, cpu_memory


class PlainBlock(nn.Module):
    def __init__(self, d: int, h: int, d_mlp: int) -> None:
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, d_mlp), nn.Linear(d_mlp, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, p, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, p, d)
        x = x + self.out(z)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class PlainDecoder(nn.Module):
    """The reference: nanoGPT-style pre-LN decoder with fused attention and no hooks."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.n_ctx, cfg.d_model))
        self.blocks = nn.ModuleList(PlainBlock(cfg.d_model, cfg.n_heads, cfg.d_mlp) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.d_vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln(x))


def timed(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hook_overhead.json"))
    parser.add_argument("--glibc-defaults", action="store_true", help="PROBE_KEEP_FREED_MEMORY=0 (see cpu_memory)")
    args = parser.parse_args()
    if args.glibc_defaults:
        os.environ[cpu_memory.ENV] = "0"
    dev = args.device
    cfg = TransformerConfig(d_model=256, n_layers=4, n_heads=8, d_mlp=1024, d_vocab=512, n_ctx=args.seq, act_fn="gelu")
    ours, plain = Transformer(cfg).to(dev), PlainDecoder(cfg).to(dev)
    tokens = torch.randint(0, cfg.d_vocab, (args.batch, args.seq), device=dev)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev == "cuda" else nullcontext()

    def train_step(model):
        def step():
            with autocast:
                logits = model(tokens)
                loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())
            loss.backward()
            model.zero_grad(set_to_none=True)

        return step

    def forward(model):
        def fwd():
            with torch.no_grad(), autocast:
                model(tokens)

        return fwd

    def cache_all():
        with torch.no_grad(), autocast:
            ours.run_with_cache(tokens)

    def cache_tl_default():  # what TransformerLens caches by default (use_attn_result=False): no hook_result
        with torch.no_grad(), autocast:
            ours.run_with_cache(tokens, names_filter=lambda name: not name.endswith("hook_result"))

    cases = {
        "plain_fwd_bwd": train_step(plain),
        "ours_fwd_bwd": train_step(ours),
        "plain_fwd": forward(plain),
        "ours_fwd": forward(ours),
        "ours_run_with_cache_all": cache_all,
        "ours_run_with_cache_without_result": cache_tl_default,
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm up
        fn()
        fn()
    for _ in range(args.repeats):  # interleaved, so drift hits every case alike
        for name, fn in cases.items():
            times[name].append(timed(fn, dev))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "device": dev if dev == "cpu" else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "keep_freed_memory": cpu_memory.for_caching() if dev == "cpu" else None,
        "shape": dict(n_layers=4, d_model=256, n_heads=8, d_mlp=1024, batch=args.batch, seq=args.seq),
        "median_seconds": med,
        "ratio_fwd_bwd_no_hooks": med["ours_fwd_bwd"] / med["plain_fwd_bwd"],
        "ratio_fwd_no_hooks": med["ours_fwd"] / med["plain_fwd"],
        "ratio_run_with_cache_all_vs_plain_fwd": med["ours_run_with_cache_all"] / med["plain_fwd"],
        "ratio_run_with_cache_without_result_vs_plain_fwd": med["ours_run_with_cache_without_result"]
        / med["plain_fwd"],
        "targets": {"ratio_fwd_bwd_no_hooks": 1.05, "ratio_run_with_cache_all_vs_plain_fwd": 1.5},
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k.startswith("ratio") or k == "device"}, indent=2))
    return result


if __name__ == "__main__":
    main()
