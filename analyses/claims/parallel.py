"""Transformers train all positions in parallel, RNNs cannot; generation is sequential either way (seeds 000 §1,
001 §2.2, 003 #17; Vaswani et al. 2017 sec. 4).

Seeds 000 §1 and 001 §2.2: an RNN must compute step t before step t+1, so it cannot run in parallel; the Transformer
can, which is why it trains faster. 003 #17 adds that the decoder is sequential only when it generates. So: a
Transformer's training step should grow more slowly with sequence length than an LSTM's of equal parameters; generating
n tokens takes n sequential steps (time grows with n, cache or not); a KV cache makes each step cheaper.

Experiment. A 2-layer Transformer decoder (sinusoidal positions, so no position parameters) and a 3-layer LSTM
(`probe.models.lstm`, torch's fused kernel) of the same width, which have nearly the same number of parameters, train
on random tokens through `probe.Trainer` at several sequence lengths. The time per step is the Trainer's own
throughput over a block of steps after a block of warm-up steps; lengths and models are measured in shuffled order,
several times, and the median is kept. Growth with length is summarised as the exponent of a power law through the
shortest and the longest length (1 = linear, 2 = quadratic). Generation: greedy `generate` of n new tokens after a
short prompt, with and without the KV cache, for a small and a large n, timed the same way. Every ratio is taken
within one process, so a slower or busier machine shifts both sides. Timings on CPU use one thread per process.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _plot
from probe.models.lstm import LSTM, LSTMConfig
from probe.models.transformer import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, grid, judge, main
from probe.train import DictDataset, TrainConfig, Trainer, select_device

SOURCE = "000 §1, 001 §2.2, 003 #17; Vaswani et al. 2017 sec. 4"
CLAIMS = (
    Claim("training_grows_slower", "A Transformer's training step grows more slowly with sequence length than an "
          "LSTM's of equal parameters, because it processes all positions at once.", SOURCE,
          "length exponent of step time, LSTM minus Transformer", ">", 0.0),
    Claim("generation_is_sequential", "Generation is sequential even with the KV cache: the time to generate n "
          "tokens grows about linearly in n (exponent 1), not flat as a parallel computation's would (exponent 0).",
          "003 #17, 001 §5.4", "exponent of generation time in new tokens, with KV cache", ">", 0.5),
    Claim("cache_makes_steps_cheaper", "The KV cache makes each generation step cheaper than recomputing the whole "
          "prefix.", "003 #17; Vaswani et al. 2017", "generation time without / with the KV cache, largest n", ">",
          1.0),
)


@dataclass
class Config:
    d_model: int = 64
    transformer_layers: int = 2
    lstm_layers: int = 3  # 3 x 8 d^2 = 2 x 12 d^2 parameters
    n_heads: int = 4
    d_vocab: int = 64
    batch_size: int = 16
    lengths: tuple[int, ...] = (32, 64, 128, 256)
    steps: int = 5  # timed steps per block (after as many warm-up steps)
    repeats: int = 3
    prompt: int = 16
    new_tokens: tuple[int, ...] = (32, 128)
    gen_batch: int = 4
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    workers: int = 2


def models(cfg: Config, seed: int) -> dict[str, torch.nn.Module]:
    tf = Transformer(TransformerConfig(d_model=cfg.d_model, n_layers=cfg.transformer_layers, n_heads=cfg.n_heads,
                                       d_vocab=cfg.d_vocab, n_ctx=max(cfg.lengths), seed=seed,
                                       positional_embedding_type="sinusoidal"))
    lstm = LSTM(LSTMConfig(d_model=cfg.d_model, n_layers=cfg.lstm_layers, d_vocab=cfg.d_vocab, seed=seed))
    return {"transformer": tf, "lstm": lstm}


def step_time(model: torch.nn.Module, data: DictDataset, cfg: Config, seed: int) -> float:
    """Seconds per training step: the Trainer's throughput over `steps` steps after `steps` warm-up steps."""
    tc = TrainConfig(steps=2 * cfg.steps, batch_size=cfg.batch_size, log_every=cfg.steps, seed=seed, progress=False)
    history = Trainer(model, data, None, tc).fit()
    rate = [r["tokens_per_s"] for r in history if "tokens_per_s" in r][1]
    return cfg.batch_size * data.tensors["tokens"].shape[1] / rate


def generation_time(model: Transformer, prompt: torch.Tensor, n: int, cache: bool) -> float:
    start = time.perf_counter()
    model.generate(prompt, n, use_cache=cache)
    if prompt.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(seed: int, cfg: Config) -> list[dict]:
    """Every timing of one seed (model init, data and measurement order), medians over repeats."""
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    nets = models(cfg, seed)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in nets.items()}
    data = {t: DictDataset(tokens=torch.randint(cfg.d_vocab, (4 * cfg.batch_size, t), generator=gen))
            for t in cfg.lengths}
    tf = nets["transformer"].to(select_device())
    prompt = torch.randint(cfg.d_vocab, (cfg.gen_batch, cfg.prompt), generator=gen)
    train_jobs = [("train", arch, t) for arch in nets for t in cfg.lengths]
    gen_jobs = [("generate", "kv_cache" if c else "no_cache", n) for c in (True, False) for n in cfg.new_tokens]
    for _, arch, n in gen_jobs:  # warm-up
        generation_time(tf.eval(), prompt.to(tf.device), n, arch == "kv_cache")
    times: dict[tuple, list[float]] = {job: [] for job in train_jobs + gen_jobs}
    for _ in range(cfg.repeats):
        jobs = train_jobs + gen_jobs
        rng.shuffle(jobs)
        for job in jobs:
            kind, arch, size = job
            if kind == "train":
                times[job].append(step_time(nets[arch].train(), data[size], cfg, seed))
            else:
                with torch.no_grad():
                    times[job].append(generation_time(tf.eval(), prompt.to(tf.device), size, arch == "kv_cache"))
    return [{"kind": kind, "model": arch, "size": size, "seconds": sorted(v)[len(v) // 2],
             "params": params["transformer" if kind == "generate" else arch]}
            for (kind, arch, size), v in times.items()]


def exponent(table: pd.DataFrame, kind: str, model: str) -> tuple[list[float], list[int]]:
    """Per seed: log(time at the largest size / time at the smallest) / log(largest / smallest size)."""
    rows = table[(table["kind"] == kind) & (table["model"] == model)]
    if rows.empty:
        raise ValueError(f"no rows with kind={kind!r}, model={model!r}")
    lo, hi = rows["size"].min(), rows["size"].max()
    out = []
    for _, g in rows.groupby("seed"):
        a, b = g[g["size"] == lo]["seconds"].item(), g[g["size"] == hi]["seconds"].item()
        out.append(math.log(b / a) / math.log(hi / lo))
    return out, [int(i) for i in rows.index]


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    lstm, rows_l = exponent(table, "train", "lstm")
    tf, rows_t = exponent(table, "train", "transformer")
    gen, rows_g = exponent(table, "generate", "kv_cache")
    big = table[table["kind"] == "generate"]["size"].max()
    no = table[(table["kind"] == "generate") & (table["model"] == "no_cache") & (table["size"] == big)]
    yes = table[(table["kind"] == "generate") & (table["model"] == "kv_cache") & (table["size"] == big)]
    ratio = no.set_index("seed")["seconds"] / yes.set_index("seed")["seconds"]
    return [judge(c["training_grows_slower"], [a - b for a, b in zip(lstm, tf)], rows_l + rows_t),
            judge(c["generation_is_sequential"], gen, rows_g),
            judge(c["cache_makes_steps_cheaper"], ratio.to_numpy(), [int(i) for i in no.index.append(yes.index)])]


def experiment(cfg: Config) -> Outcome:
    table = grid(functools.partial(measure, cfg=cfg), [{}], cfg.seeds, desc="timings", workers=cfg.workers)
    summary = {f"parameters, {m}": int(g["params"].iloc[0])
               for m, g in table[table["kind"] == "train"].groupby("model")}
    for (kind, model, size), g in table.groupby(["kind", "model", "size"]):
        unit = "step" if kind == "train" else "call"
        summary[f"{kind}, {model}, {'length' if kind == 'train' else 'new tokens'} {size}: s per {unit} (median "
                "over seeds)"] = float(g["seconds"].median())
    return Outcome(table, summary)


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, kind, xlabel in ((axes[0], "train", "sequence length"), (axes[1], "generate", "new tokens")):
        for model, g in t[t["kind"] == kind].groupby("model"):
            stats = g.groupby("size")["seconds"].agg(["median", "min", "max"])
            ax.errorbar(stats.index, stats["median"], yerr=[stats["median"] - stats["min"],
                                                            stats["max"] - stats["median"]],
                        marker="o", capsize=3, label=model)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="seconds per step" if kind == "train" else
               "seconds per call")
        sizes = sorted(t[t["kind"] == kind]["size"].unique())
        ax.set_xticks(sizes, [str(x) for x in sizes], minor=False)
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("training step vs length (median, range over seeds)")
    axes[1].set_title("greedy generation, Transformer")
    return _plot.save(fig, out / "parallel.png")


STUDY = Study(
    name="claims.parallel",
    title="Parallel training, sequential generation, and the KV cache (seeds 000, 001 §2.2, 003 #17)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(d_model=16, lengths=(8, 16), steps=1, repeats=1, prompt=4, new_tokens=(2, 4), batch_size=4,
                 seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
