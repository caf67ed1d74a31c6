"""Induction heads form at a phase change (Olsson et al. 2022, "In-context learning and induction heads"; Elhage et
al. 2021, "A mathematical framework for transformer circuits"; /work/shared/reference/dynamics.md).

1- and 2-layer attention-only decoders train with the next-token loss on repeated random blocks
(`probe.data.induction.repeated_blocks`: pairs of copies of random blocks of varying length, with random noise between
the copies of a pair), recorded throughout by `probe.train.recorder.Recorder`. From the recording: the prefix-matching
score of every head and the in-context score (loss on repeated tokens minus loss on first copies) over training, and
the window in which each changes (`probe.phases.transition`). At the end, on fresh sequences: the in-context gain, the
K-composition score of the induction head with the layer-0 previous-token head against random matrices of the same
shapes (`probe.circuits`), the gain left when that previous-token head is mean-ablated, and the accuracy on repeats at
block lengths seen in training and longer ones never seen.

`python -m analyses run dynamics.induction_formation [--quick] [--seeds N] [--set FIELD=VALUE]`; with
`--set save=DIR` the 2-layer model of the first seed is also written there as a checkpoint with its recording (how
`checkpoints/induction_2l` is made).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from probe.circuits import (
    composition_scores,
    detector_scores,
    head_ablation_hooks,
    in_context_score,
    prefix_matching_score,
    random_composition_scores,
    repeat_accuracy,
    token_losses,
)
from probe.data.induction import RepeatedBlocks, induction_prediction, repeated_blocks
from probe.data.synthetic import BOS, N_SPECIAL, PAD
from probe.phases import steepest_window, transition
from probe.study import Claim, Outcome, Study, Verdict, column, grid, judge, main, paired
from probe.train import Recorder, TrainConfig, Trainer
from probe.train.batches import DictDataset
from probe.trajectory import load_trajectory

SOURCE = "Olsson et al. 2022 §3-§4; Elhage et al. 2021"
MIN_RISE = 0.2  # a head "rose" when its prefix-matching score gained at least this much over training

FORMS = Claim("forms", "A 2-layer attention-only decoder forms an induction head in layer 1.", SOURCE,
              "final prefix-matching score of the best layer-1 head (2 layers; 1 = ideal induction head)", ">", 0.5)
WINDOW = 0.1  # the "short window": this fraction of the training steps
ABRUPT = Claim("abrupt", "The induction score of the best layer-1 head jumps within a short window of training.",
               "Olsson et al. 2022 §3 (phase change)",
               f"share of that head's total prefix-matching rise (first record -> mean of the last 10%) made within "
               f"its steepest window of {WINDOW:g} x the training steps (2 layers, seeds whose score rose by >= "
               f"{MIN_RISE})", ">", 0.5)
COINCIDES = Claim("coincides", "The jump coincides with the drop of the loss on the repeats relative to first copies.",
                  "Olsson et al. 2022 §3 (phase change)",
                  "|center of the score's steepest window - center of the in-context score's steepest window| / the "
                  f"window's width (2 layers, seeds whose score rose by >= {MIN_RISE})", "<", 0.5)
NO_HEAD = Claim("one_layer_no_head", "A 1-layer model forms no induction head.", "Olsson et al. 2022 §4",
                "final prefix-matching score of the best head (1 layer)", "<", 0.2)
LITTLE = Claim("one_layer_little_icl", "A 1-layer model gains little in context.", "Olsson et al. 2022 §4",
               "in-context gain (first-copy loss - repeat loss) of the 1-layer model / that of the 2-layer model, "
               "same seed", "<", 0.25)
K_COMP = Claim("k_composition", "The induction head K-composes with a layer-0 previous-token head.",
               "Elhage et al. 2021 (composition scores)",
               "K-composition score of (best layer-0 previous-token head -> best layer-1 induction head) / mean score "
               "of random matrices of the same shapes (2 layers)", ">", 2.0)
ABLATION = Claim("ablation", "Ablating that previous-token head removes most of the in-context gain.",
                 "Olsson et al. 2022 §4; Elhage et al. 2021",
                 "1 - in-context gain with the previous-token head mean-ablated / gain intact (2 layers)", ">", 0.5)
CLAIMS = (FORMS, ABRUPT, COINCIDES, NO_HEAD, LITTLE, K_COMP, ABLATION)


@dataclass
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    layers: tuple[int, ...] = (1, 2)
    # data: probe.data.induction.repeated_blocks
    n_symbols: int = 256  # many, so that a block rarely repeats a symbol within itself and the token after the
    # earlier occurrence is the answer: pure induction's accuracy (the report's oracle_B*) was 0.51 at blocks of 16
    # and 0.33 at 31 with the 32 symbols of the checkpoint shipped before
    min_block: int = 2
    max_block: int = 16
    max_gap: int = 16
    block_dist: str = "uniform"
    length: int = 64
    n_train: int = 20_000
    # model: attention-only, pre-LN, learned absolute positions (the small models of Olsson et al. 2022)
    d_model: int = 64
    n_heads: int = 4
    positional: str = "learned"
    # training
    steps: int = 4000
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100
    # measurement
    record_every: int = 25
    n_probe: int = 64
    n_eval: int = 512
    eval_blocks: tuple[int, ...] = (2, 4, 8, 12, 16, 20, 24, 28, 31)
    baseline_samples: int = 2000
    pattern_every: int = 0  # also record attention patterns of `pattern_batch` probe sequences every N steps
    pattern_batch: int = 1
    save: str = ""  # write the first seed's 2-layer model here (a checkpoint; its recording, with attention patterns
    # every `pattern_every` steps or every 100, in DIR/trajectory)
    recordings: str = ""  # keep every run's recording under this directory (default: a temporary one)
    workers: int = 1  # runs trained at once, in processes of one torch thread each (probe.study.grid)


QUICK = Config(seeds=(0,), n_symbols=8, max_block=4, max_gap=2, length=16, n_train=512, d_model=16, n_heads=2,
               steps=40, batch_size=16, record_every=10, n_probe=8, n_eval=32, eval_blocks=(2, 4, 6),
               baseline_samples=50)


def symbol_names(n_symbols: int) -> list[str]:
    return ["<pad>", "<bos>", "<eos>", *(f"s{i}" for i in range(n_symbols))]


def make_model(cfg: Config, layers: int, seed: int):
    from probe.config import TransformerConfig
    from probe.interop.bridge import vocab_tokenizer
    from probe.models.transformer import Transformer

    mcfg = TransformerConfig(d_model=cfg.d_model, n_layers=layers, n_heads=cfg.n_heads, attn_only=True,
                             positional_embedding_type=cfg.positional, d_vocab=N_SPECIAL + cfg.n_symbols,
                             n_ctx=cfg.length, unembed_bias=False, bos_token_id=BOS, pad_token_id=PAD, seed=seed,
                             model_name=f"induction-{layers}l-attn-only")
    return Transformer(mcfg, tokenizer=vocab_tokenizer(names=symbol_names(cfg.n_symbols)))


def blocks(cfg: Config, n: int, seed: int, block: int | None = None) -> RepeatedBlocks:
    lo, hi = (block, block) if block is not None else (cfg.min_block, cfg.max_block)
    return repeated_blocks(n, cfg.n_symbols, lo, hi, cfg.length, seed, cfg.block_dist, cfg.max_gap)


def train_config(cfg: Config, seed: int) -> TrainConfig:
    return TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                       seed=seed, log_every=max(1, cfg.steps // 40), progress=False)


# ---- measures taken during training (recorded) ----------------------------------------------------------------------
def induction_measures(probe: RepeatedBlocks, n_layers: int):
    """`fn(model, step)` for `Recorder(custom=...)`: in-context score and loss on repeats / first copies, and the
    prefix-matching score [layer, head] on the second copies of the probe sequences."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]

    def measure(model, step: int) -> dict[str, Any]:
        logits, cache = model.run_with_cache(probe.tokens.to(model.device), names_filter=names)
        losses = token_losses(logits.cpu(), probe.tokens)
        late, early = probe.repeat_targets[:, 1:], probe.first_targets[:, 1:]
        return {"in_context": in_context_score(losses, late, early), "repeat_loss": losses[late].mean().item(),
                "first_loss": losses[early].mean().item(),
                "prefix_matching": torch.stack([prefix_matching_score(cache[n].cpu(), probe.tokens,
                                                                      probe.second_copy) for n in names])}

    return measure


def sparse_patterns(tokens: torch.Tensor, every: int, n_layers: int):
    """`fn(model, step)` recording every layer's attention pattern on `tokens` at multiples of `every` only."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]

    def measure(model, step: int) -> dict[str, Any]:
        if step % every:
            return {}
        _, cache = model.run_with_cache(tokens.to(model.device), names_filter=names)
        return {name: cache[name].cpu().half() for name in names}

    return measure


# ---- measures taken at the end -----------------------------------------------------------------------------------
@torch.no_grad()
def in_context_gain(model, data: RepeatedBlocks, hooks=()) -> float:
    """First-copy loss - repeat loss (nats; positive when the model uses the context), optionally under hooks."""
    logits = model.run_with_hooks(data.tokens.to(model.device), fwd_hooks=list(hooks))
    losses = token_losses(logits.cpu(), data.tokens)
    return -in_context_score(losses, data.repeat_targets[:, 1:], data.first_targets[:, 1:])


def shifted_matching(pattern: torch.Tensor, data: RepeatedBlocks) -> torch.Tensor:
    """[head] attention from second-copy tokens to two positions after an earlier occurrence of the token (an
    induction mechanism that reads the previous-token head's output there instead of the token itself)."""
    from probe.circuits import detection_pattern

    det = detection_pattern(data.tokens, "induction")
    shifted = torch.zeros_like(det)
    shifted[:, :, 1:] = det[:, :, :-1]
    rows = (det.sum(-1) > 0) & data.second_copy
    return ((pattern * shifted[:, None]).sum(-1) * rows[:, None]).sum((0, 2)) / rows.sum()


def final_measures(model, cfg: Config, layers: int, seed: int) -> dict[str, Any]:
    data = blocks(cfg, cfg.n_eval, 20_000 + seed)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(layers)]
    logits, cache = model.run_with_cache(data.tokens, names_filter=names)
    losses = token_losses(logits, data.tokens)
    late, early = data.repeat_targets[:, 1:], data.first_targets[:, 1:]
    pm = torch.stack([prefix_matching_score(cache[n], data.tokens, data.second_copy) for n in names])
    prev = detector_scores(cache[names[0]], data.tokens, "previous_token")
    last = layers - 1
    head = int(pm[last].argmax())
    out: dict[str, Any] = {
        "first_loss": losses[early].mean().item(), "repeat_loss": losses[late].mean().item(),
        "icl_gain": -in_context_score(losses, late, early),
        "best_head": f"{last}.{head}", "best_prefix_matching": pm[last, head].item(),
        "max_prefix_matching_layer0": pm[0].max().item(),
        "best_shifted_matching": shifted_matching(cache[names[-1]], data).max().item(),
        "prev_head": f"0.{int(prev.argmax())}", "prev_score": prev.max().item(),
    }
    for b in cfg.eval_blocks:
        fixed = blocks(cfg, cfg.n_eval, 30_000 + seed, block=b)
        out[f"acc_B{b}"] = repeat_accuracy(model, fixed.tokens, fixed.repeat_targets)
        oracle = induction_prediction(fixed.tokens)[:, :-1] == fixed.tokens[:, 1:]
        out[f"oracle_B{b}"] = oracle[fixed.repeat_targets[:, 1:]].float().mean().item()
    if layers >= 2:
        p = int(prev.argmax())
        k = composition_scores(model, "K")[0, :, last, head]  # [layer-0 head]
        baseline = random_composition_scores(cfg.d_model, model.cfg.d_head, "K", cfg.baseline_samples, seed)
        out.update({"k_comp": k[p].item(), "k_comp_baseline": baseline.mean().item(),
                    "k_comp_baseline_q99": baseline.quantile(0.99).item(),
                    "k_comp_ratio": k[p].item() / baseline.mean().item(),
                    "k_comp_other_max": max((k[h].item() for h in range(len(k)) if h != p), default=math.nan)})
        gain = out["icl_gain"]
        removed = {h: 1 - in_context_gain(model, data, head_ablation_hooks(model, [(0, h)], data.tokens)) / gain
                   for h in range(model.cfg.n_heads)}
        out["ablation_removed"] = removed[p]
        out["ablation_removed_other_max"] = max((v for h, v in removed.items() if h != p), default=math.nan)
    return out


def windows(traj, layers: int, head: int, steps: int) -> dict[str, float]:
    """When the head's prefix-matching score and the in-context score change: their 10/50/90% crossing steps and
    their steepest windows of WINDOW x `steps` (the claims' windows), the lag between those windows' centers."""
    at = traj.steps
    score = traj["induction.prefix_matching"][:, layers - 1, head].numpy()
    icl = traj["induction.in_context"].numpy()
    s, c = transition(at, score), transition(at, icl)
    width = WINDOW * steps
    ws, wc = steepest_window(at, score, width), steepest_window(at, icl, width)
    return {"score_start": s.start, "score_end": s.end, "score_t10": s.t_low, "score_t50": s.t_mid,
            "score_t90": s.t_high, "icl_start": c.start, "icl_end": c.end, "icl_t10": c.t_low, "icl_t50": c.t_mid,
            "icl_t90": c.t_high, "score_window_start": ws.t_start, "score_window_end": ws.t_end,
            "score_share": ws.share, "icl_window_start": wc.t_start, "icl_window_end": wc.t_end,
            "icl_share": wc.share, "lag": ws.center - wc.center, "coincidence": abs(ws.center - wc.center) / width}


# ---- one run ---------------------------------------------------------------------------------------------------
def train_one(cfg: Config, layers: int, seed: int, record_dir: Path, pattern_every: int = 0):
    """Train one model with the Recorder; returns (model, trainer, probe sequences)."""
    model = make_model(cfg, layers, seed)
    probe = blocks(cfg, cfg.n_probe, 10_000 + seed)
    custom = {"induction": induction_measures(probe, layers)}
    if pattern_every:
        custom["attention"] = sparse_patterns(probe.tokens[: cfg.pattern_batch], pattern_every, layers)
    recorder = Recorder(record_dir, every=cfg.record_every, probe_batch={"tokens": probe.tokens},
                        measures=("loss", "head_scores", "weight_norms"), custom=custom,
                        meta={"study": "dynamics.induction_formation", "layers": layers, "seed": seed,
                              "config": dataclasses.asdict(cfg)})
    train = DictDataset(tokens=blocks(cfg, cfg.n_train, seed).tokens)
    trainer = Trainer(model, train, None, train_config(cfg, seed), callbacks=[recorder])
    trainer.fit()
    return model.eval(), trainer, probe


def record_dir(root: Path, layers: int, seed: int) -> Path:
    return root / f"L{layers}_seed{seed}"


def run_one(layers: int, seed: int, cfg: Config, root: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    start, wall = time.process_time(), time.perf_counter()
    path = record_dir(root, layers, seed)
    shipped = bool(cfg.save) and layers == 2 and seed == cfg.seeds[0]
    model, trainer, _ = train_one(cfg, layers, seed, path, (cfg.pattern_every or 100) if shipped else 0)
    row = final_measures(model, cfg, layers, seed)
    head = int(row["best_head"].split(".")[1])
    row.update(windows(load_trajectory(path), layers, head, cfg.steps))
    row["final_train_loss"] = trainer.last_loss
    row["cpu_s"] = time.process_time() - start
    if shipped:
        save_checkpoint(model, trainer, cfg, row, Path(cfg.save), time.perf_counter() - wall)
        shutil.rmtree(Path(cfg.save) / "trajectory", ignore_errors=True)  # a rerun replaces the old recording
        shutil.copytree(path, Path(cfg.save) / "trajectory")
    return row


def experiment(cfg: Config) -> Outcome:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(cfg.recordings) if cfg.recordings else Path(tmp)
        table = grid(functools.partial(run_one, cfg=cfg, root=root), [{"layers": n} for n in cfg.layers],
                     cfg.seeds, desc="induction_formation", workers=cfg.workers)
        curves = {}
        for row in table.itertuples():
            traj = load_trajectory(record_dir(root, row.layers, row.seed))
            head = int(row.best_head.split(".")[1])
            curves[(row.layers, row.seed)] = {
                "steps": traj.steps, "score": traj["induction.prefix_matching"][:, row.layers - 1, head].numpy(),
                "in_context": traj["induction.in_context"].numpy(), "loss": traj["loss"].numpy(),
                "final_scores": traj["induction.prefix_matching"][-1].numpy()}
    return Outcome(table, summary(table, cfg), {"curves": curves, "config": cfg})


def summary(table: pd.DataFrame, cfg: Config) -> dict[str, Any]:
    """Key numbers for the report: means over seeds per layer count, and the seeds' windows."""
    out: dict[str, Any] = {}
    for layers, rows in table.groupby("layers"):
        out[f"{layers}L: in-context gain (nats), mean over seeds"] = rows["icl_gain"].mean()
        out[f"{layers}L: best prefix-matching score, mean"] = rows["best_prefix_matching"].mean()
        trained = [b for b in cfg.eval_blocks if cfg.min_block <= b <= cfg.max_block]
        untrained = [b for b in cfg.eval_blocks if b not in trained]
        for name, bs in (("trained", trained), ("untrained", untrained)):
            if bs:
                out[f"{layers}L: repeat accuracy at {name} block lengths {bs}, mean"] = float(
                    rows[[f"acc_B{b}" for b in bs]].to_numpy().mean())
    two = table[table["layers"] == 2]
    for row in two.itertuples():
        out[f"2L seed {row.seed}: score's steepest window (share of its rise)"] = (
            f"[{row.score_window_start:.0f}, {row.score_window_end:.0f}] ({row.score_share:.2f})")
        out[f"2L seed {row.seed}: in-context score's steepest window (share of its drop)"] = (
            f"[{row.icl_window_start:.0f}, {row.icl_window_end:.0f}] ({row.icl_share:.2f})")
        out[f"2L seed {row.seed}: lag between the windows' centers (steps)"] = row.lag
        out[f"2L seed {row.seed}: score t10 / t50 / t90; in-context t10 / t50 / t90"] = (
            f"{row.score_t10:.0f} / {row.score_t50:.0f} / {row.score_t90:.0f}; "
            f"{row.icl_t10:.0f} / {row.icl_t50:.0f} / {row.icl_t90:.0f}")
    return out


# ---- the verdicts (pure) ---------------------------------------------------------------------------------------------
def _no_data(claim: Claim) -> Verdict:
    return Verdict(claim, "inconclusive", math.nan, -math.inf, math.inf, 0, "t")


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    out = []
    values, rows = column(table, "best_prefix_matching", layers=2)
    out.append(judge(FORMS, values, rows))
    rose, rose_rows = column(table, "score_end", layers=2)
    start, _ = column(table, "score_start", layers=2)
    keep = (rose - start) >= MIN_RISE
    for claim, metric in ((ABRUPT, "score_share"), (COINCIDES, "coincidence")):
        values, rows = column(table, metric, layers=2)
        kept = keep & np.isfinite(values)
        out.append(judge(claim, values[kept], [r for r, k in zip(rows, kept) if k]) if kept.any()
                   else _no_data(claim))
    values, rows = column(table, "best_prefix_matching", layers=1)
    out.append(judge(NO_HEAD, values, rows))
    values, rows = paired(table, "icl_gain", {"layers": 1}, {"layers": 2}, how="ratio")
    out.append(judge(LITTLE, values, rows))
    values, rows = column(table, "k_comp_ratio", layers=2)
    out.append(judge(K_COMP, values, rows))
    values, rows = column(table, "ablation_removed", layers=2)
    out.append(judge(ABLATION, values, rows))
    return out


# ---- figures ---------------------------------------------------------------------------------------------------
def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table, curves, cfg = outcome.table, outcome.artifacts["curves"], outcome.artifacts["config"]
    paths = []
    two = [k for k in curves if k[0] == 2]
    fig, axes = plt.subplots(1, max(1, len(two)), figsize=(4.2 * max(1, len(two)), 3.2), squeeze=False)
    for ax, key in zip(axes[0], two):
        c, row = curves[key], table[(table["layers"] == 2) & (table["seed"] == key[1])].iloc[0]
        ax.plot(c["steps"], c["score"], color="C0", label=f"prefix matching, head {row['best_head']}")
        ax.set(xlabel="step", ylabel="prefix-matching score", title=f"2 layers, seed {key[1]}", ylim=(0, 1))
        ax.axvspan(row["score_window_start"], row["score_window_end"], color="C0", alpha=0.15,
                   label="score's steepest window")
        ax2 = ax.twinx()
        ax2.plot(c["steps"], c["in_context"], color="C3", label="in-context score (nats)")
        ax2.axvspan(row["icl_window_start"], row["icl_window_end"], color="C3", alpha=0.1,
                    label="in-context score's steepest window")
        ax2.set_ylabel("in-context score (nats)")
        lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(lines, [h.get_label() for h in lines], fontsize=6, loc="center right")
    fig.tight_layout()
    paths.append(out_dir / "phase_change.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.2))
    bs = list(cfg.eval_blocks)
    for layers, rows in table.groupby("layers"):
        acc = rows[[f"acc_B{b}" for b in bs]].to_numpy()
        ax.errorbar(bs, acc.mean(0), yerr=acc.std(0), marker="o", capsize=2, label=f"{layers} layer(s)")
    oracle = table[[f"oracle_B{b}" for b in bs]].to_numpy().mean(0)
    ax.plot(bs, oracle, "k--", lw=1, label="pure induction (most recent occurrence)")
    ax.axvspan(cfg.min_block - 0.5, cfg.max_block + 0.5, color="gray", alpha=0.12, label="trained block lengths")
    ax.set(xlabel="block length B", ylabel="accuracy on repeats", ylim=(0, 1.02), title="Accuracy by block length")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "accuracy_by_block.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    keys = sorted(curves)
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        im = ax.imshow(curves[key][ "final_scores"], vmin=0, vmax=1, cmap="viridis")
        ax.set(title=f"{key[0]}L seed {key[1]}", xlabel="head", ylabel="layer",
               yticks=range(key[0]), xticks=range(curves[key]["final_scores"].shape[1]))
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02, label="prefix matching")
    paths.append(out_dir / "prefix_matching.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


# ---- the shipped checkpoint -----------------------------------------------------------------------------------------
GENERATOR = ("tokens = [bos, then pairs of copies of random blocks until `length` tokens: r_1..r_B, G noise tokens, "
             "r_1..r_B, s_1..s_C, G' noise tokens, s_1..s_C, ...], the last pair cut off at `length`; each block "
             "length uniform in [min_block, max_block] (block_dist 'uniform'; 'inverse': P(B) ~ 1/B), each gap G "
             "uniform in [0, max_gap], every block and noise token uniform over the n_symbols symbols (ids 3..), "
             "bos = 1 (probe.data.induction.repeated_blocks)")


def save_checkpoint(model, trainer, cfg: Config, row: dict[str, Any], path: Path, seconds: float) -> Path:
    """Write the trained model at `path` with what made it (the caller adds its recording as `path/trajectory`)."""
    from probe.checkpoint import save
    from probe.study import command_line

    meta = {
        "command": command_line(), "study": "dynamics.induction_formation", "study_config": dataclasses.asdict(cfg),
        "train_config": trainer.cfg.to_dict(), "step": trainer.step, "train_seconds": seconds,
        "task": {"name": "induction", "generator": GENERATOR,
                 **{k: getattr(cfg, k) for k in ("n_symbols", "min_block", "max_block", "max_gap", "block_dist",
                                                 "length")}},
        "metrics": {k: v for k, v in row.items() if isinstance(v, (int, float, str))},
    }
    return save(model, path, meta=meta, tokenizer=model.tokenizer)


STUDY = Study(
    name="dynamics.induction_formation",
    title="Induction heads form at a phase change (Olsson et al. 2022)",
    claims=CLAIMS,
    config=Config(),
    quick=QUICK,
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=(
        "One- and two-layer attention-only decoders learn next-token prediction on random tokens in which blocks of "
        "varying length repeat after a gap of noise. Their training is recorded: the prefix-matching score of every "
        "head (attention from a repeated token to the token that followed its earlier occurrence) and the in-context "
        "score (loss on repeated tokens minus loss on first copies). The claims: in the two-layer model the best "
        "layer-1 head's score jumps in a short window that coincides with the drop of the in-context score; a "
        "one-layer model forms no such head and gains little from the context; the induction head reads its keys "
        "from a layer-0 previous-token head (K-composition above random matrices of the same shapes), and "
        "mean-ablating that head removes most of the in-context gain. Accuracy on repeats is also measured at block "
        "lengths longer than any seen in training."),
)

if __name__ == "__main__":
    main(STUDY)
