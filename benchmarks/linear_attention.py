"""Linear attention forms vs softmax SDPA: time and peak memory against sequence length (forward, no grad).

Forms (probe.ops): sum rule parallel / recurrent / chunked, delta rule recurrent / chunked; reference: causal
`F.scaled_dot_product_attention` in the same run. Head dim 64, batch 1, 4 heads, elu+1 features.
Targets (CPU): chunked >= 10x faster than recurrent at L=4096; chunked memory linear in L; the length where chunked
linear attention overtakes softmax is reported. Peak memory: CUDA max_memory_allocated on GPU; on CPU the peak of the
running sum of allocations recorded by torch.profiler (profile_memory=True).

`python benchmarks/linear_attention.py [--lengths ...] [--quick]` -> benchmarks/results/linear_attention.{json,png}
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from probe.ops.delta_rule import delta_rule  # noqa: E402
from probe.ops.feature_maps import elu_plus_one, sum_normalize  # noqa: E402
from probe.ops.linear_attention import causal_linear_attention  # noqa: E402

B, H, D, CHUNK = 1, 4, 64, 64
PARALLEL_MAX_L = 4096  # the L x L matrix: 4 heads x 8192^2 x 4 B = 1 GiB, skipped beyond


def forms(device: torch.device):
    def lin(form):
        return lambda q, k, v, b: causal_linear_attention(elu_plus_one(q), elu_plus_one(k), v, form=form,
                                                          chunk_size=CHUNK)

    def delta(form):
        return lambda q, k, v, b: delta_rule(sum_normalize(elu_plus_one(q)), sum_normalize(elu_plus_one(k)), v, b,
                                             form=form, chunk_size=CHUNK)

    return {
        "softmax_sdpa": lambda q, k, v, b: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "sum_parallel": lin("parallel"),
        "sum_recurrent": lin("recurrent"),
        "sum_chunked": lin("chunked"),
        "delta_recurrent": delta("recurrent"),
        "delta_chunked": delta("chunked"),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, args, device, reps: int) -> float:
    if reps > 1:
        fn(*args)  # warm-up
        sync(device)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn(*args)
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def peak_memory(fn, args, device) -> int:
    """Bytes allocated at the peak of one call, above what was allocated before it."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn(*args)
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args)
    running, peak = 0, 0
    for ev in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += ev.self_cpu_memory_usage
        peak = max(peak, running)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--quick", action="store_true", help="lengths 128 256, one rep")
    parser.add_argument("--out", default="benchmarks/results/linear_attention.json")
    parser.add_argument("--recurrent-max-len", type=int, default=8192, help="skip recurrent forms beyond this L")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    a = parser.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    lengths = [128, 256] if a.quick else a.lengths
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fns = forms(device)
    results: dict = {"device": str(device), "machine": platform.processor() or platform.machine(),
                     "threads": torch.get_num_threads(), "B": B, "H": H, "d_head": D, "chunk": CHUNK, "rows": []}
    with torch.no_grad():
        for L in lengths:
            gen = torch.Generator().manual_seed(L)
            q, k, v = (torch.randn(B, H, L, D, generator=gen).to(device) for _ in range(3))
            beta = torch.rand(B, H, L, generator=gen).to(device)
            for name, fn in fns.items():
                if (name == "sum_parallel" and L > PARALLEL_MAX_L) or ("recurrent" in name and L > a.recurrent_max_len):
                    continue
                reps = 1 if "recurrent" in name and L >= 2048 else 3
                seconds = time_it(fn, (q, k, v, beta), device, reps)
                mem = peak_memory(fn, (q, k, v, beta), device)
                results["rows"].append(dict(form=name, L=L, seconds=seconds, peak_bytes=mem))
                print(f"L={L:5d} {name:16s} {seconds * 1e3:9.2f} ms  {mem / 2**20:8.2f} MiB", flush=True)
    rows = results["rows"]

    def get(form, L, key="seconds"):
        return next((r[key] for r in rows if r["form"] == form and r["L"] == L), None)

    summary = {}
    for rule in ("sum", "delta"):
        summary[f"{rule}_chunked_speedup_over_recurrent"] = {
            L: get(f"{rule}_recurrent", L) / get(f"{rule}_chunked", L) for L in lengths if get(f"{rule}_recurrent", L)}
    summary["sum_chunked_over_softmax_time_ratio"] = {
        L: get("sum_chunked", L) / get("softmax_sdpa", L) for L in lengths}
    # the shortest L from which chunked linear attention is faster than softmax at every longer L measured
    faster = [get("sum_chunked", L) < get("softmax_sdpa", L) for L in lengths]
    crossover = next((L for i, L in enumerate(lengths) if all(faster[i:])), None)
    summary["crossover_L_chunked_beats_softmax"] = crossover
    # memory linearity: bytes per token of the chunked forms at the two longest lengths
    if len(lengths) >= 2:
        L1, L2 = lengths[-2], lengths[-1]
        for form in ("sum_chunked", "delta_chunked", "softmax_sdpa"):
            m1, m2 = get(form, L1, "peak_bytes"), get(form, L2, "peak_bytes")
            summary[f"{form}_memory_ratio_L{L2}_over_L{L1}"] = m2 / m1 if m1 else None
    if 4096 in summary["sum_chunked_speedup_over_recurrent"]:
        summary["target_chunked_10x_recurrent_at_4096"] = summary["sum_chunked_speedup_over_recurrent"][4096] >= 10
    results["summary"] = summary
    print(json.dumps(summary, indent=1))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name in fns:
        Ls = [r["L"] for r in rows if r["form"] == name]
        ax1.plot(Ls, [get(name, L) * 1e3 for L in Ls], "o-", label=name)
        ax2.plot(Ls, [get(name, L, "peak_bytes") / 2**20 for L in Ls], "o-", label=name)
    ax1.set(xscale="log", yscale="log", xlabel="sequence length L", ylabel="forward time (ms)",
            title=f"{device.type}, B={B} H={H} d={D}, chunk {CHUNK}")
    ax2.set(xscale="log", yscale="log", xlabel="sequence length L", ylabel="peak memory (MiB)")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main()
