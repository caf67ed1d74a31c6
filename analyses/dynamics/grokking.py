"""Grokking modular addition, taken apart with its progress measures (Nanda et al. 2023, "Progress measures for
grokking via mechanistic interpretability"; Power et al. 2022, "Grokking").

Setting (Nanda et al. 2023, section 3): (a + b) mod p read at "=", a random 30% of the p^2 pairs for training; a
1-layer decoder with d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm, learned positions, an untied
unembedding and no biases (the TransformerLens grokking demo freezes them at zero); AdamW lr 1e-3, weight decay
1.0, betas (0.9, 0.98), full batch (`probe.Trainer` with batch_size = the number of training pairs), no gradient
clipping. `--set preset=paper` runs p = 113 for 40000 steps, the paper's run; the default preset "cpu" keeps the
model and optimiser and takes a smaller p so that a seed fits a 2-core machine (`--set p=... --set steps=...`
override either preset).

Each seed trains once; `probe.train.recorder.Recorder` records every weight every `every` steps (the paper kept a
checkpoint every 100 epochs). The key frequencies are the final model's, as in the paper, so the progress measures
are taken afterwards on every recorded snapshot with `probe.grokking.ProgressMeasures` and written as a recording of
their own: train and test loss and accuracy, the embedding's Fourier spectrum and the share of its key frequencies,
restricted loss (the logits restricted to the key frequencies' cos/sin(w_k(a + b)) directions, on all pairs),
excluded loss (those directions removed, on the training pairs) and the total sum of squared weights.

Phases (`probe.grokking.phase_boundaries`): memorisation ends at the first record with train accuracy >= 0.99;
cleanup ends at the first record with test accuracy >= 0.99; cleanup begins at the last record before that at
which the test loss is at or above chance (ln p), and circuit formation lies between. A loss "falls" at the first
record at which it is at most half of chance (ln p / 2). Key frequencies: the fewest frequencies that hold 90% of
the final embedding's non-constant Fourier power. A seed in which an event a claim needs did not happen within
the run makes that claim's verdict inconclusive.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.config import TransformerConfig
from probe.data.modular import ModularAddition, modular_addition
from probe.grokking import ProgressMeasures, embedding_spectrum, first_step, phase_boundaries
from probe.models.transformer import Transformer
from probe.ops.fourier import key_frequencies
from probe.study import Claim, Outcome, Study, Verdict, column, command_line, grid, judge, main
from probe.train.recorder import Recorder
from probe.train.trainer import TrainConfig, Trainer
from probe.trajectory import TrajectoryWriter, load_trajectory

NANDA = "Nanda et al. 2023 (Progress measures for grokking)"
CLAIMS = (
    Claim("grokking", "Test accuracy jumps long after train accuracy reaches 100%",
          "Power et al. 2022; " + NANDA + " §3",
          "(first step with test acc >= 0.99 - first step with train acc >= 0.99) / first step with train acc >= 0.99",
          ">", 2.0),
    Claim("sparse_embedding", "A handful of key frequencies carry most of the embedding", NANDA + " §4.1",
          "number of frequencies holding 90% of the final embedding's non-constant Fourier power", "<=", 8.0),
    Claim("restricted_first", "Restricted loss falls before test loss", NANDA + " §5.2",
          "first step with test loss <= ln(p)/2 minus first step with restricted loss <= ln(p)/2", ">", 0.0),
    Claim("excluded_rises", "Excluded loss rises during circuit formation", NANDA + " §5.2",
          "ln(excluded loss at the start of cleanup / excluded loss at the end of memorisation)", ">", 0.0),
    Claim("norm_cleanup", "Weight norm falls during cleanup, faster than during circuit formation", NANDA + " §5.2",
          "fall rate of ln(sum of squared weights) per 1000 steps in cleanup minus in circuit formation "
          "(least-squares slopes over each phase's records)", ">", 0.0),
)
PRESETS = {"cpu": {"p": 59, "steps": 20000}, "paper": {"p": 113, "steps": 40000}}
ACC = 0.99  # "reaches 100%": the accuracy threshold of the grokking claim and of the phase rule
KEY_MASS = 0.9  # key frequencies: the fewest holding this share of the non-constant power


@dataclass(frozen=True)
class Config:
    preset: str = "cpu"  # "cpu" or "paper"; p and steps default to the preset's
    p: int | None = None
    steps: int | None = None
    frac_train: float = 0.3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    every: int = 100  # record every N steps
    seeds: tuple[int, ...] = (0, 1, 2)
    record_dir: str | None = None  # keep each seed's recording under DIR/seed{N} (default: a temporary directory)
    ship: str | None = None  # save the first seed's final model and recording to this checkpoint directory
    workers: int = 1  # seeds trained at once, in processes of one torch thread each (probe.study.grid)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset={self.preset!r} is not one of {tuple(PRESETS)}")
        for name in ("p", "steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < (3 if name == "p" else 1)):
                raise ValueError(f"{name}={value!r} must be an integer >= {3 if name == 'p' else 1} or null")
        for name in ("every", "workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be an integer >= 1")

    @property
    def resolved(self) -> dict[str, int]:
        """p and steps: the explicit fields, else the preset's."""
        preset = PRESETS[self.preset]
        return {"p": self.p or preset["p"], "steps": self.steps or preset["steps"]}


# ---- experiment ---------------------------------------------------------------------------------------------------
def make_model(cfg: Config, task: ModularAddition, seed: int) -> Transformer:
    model = Transformer(TransformerConfig(
        n_layers=1, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head, d_mlp=cfg.d_mlp, act_fn="relu",
        normalization_type=None, positional_embedding_type="learned", tie_embed=False, seed=seed,
        **task.model_fields()))
    for name, param in model.named_parameters():  # no biases, as in the paper's model
        if name.split(".")[-1].startswith("b_"):
            param.requires_grad_(False)
    return model


def train(cfg: Config, task: ModularAddition, seed: int, callbacks: list = ()) -> Transformer:
    """Full-batch AdamW on the training pairs through `probe.Trainer`."""
    model = make_model(cfg, task, seed)
    tc = TrainConfig(steps=cfg.resolved["steps"], batch_size=len(task.train), lr=cfg.lr, optimizer="adamw",
                     betas=cfg.betas, weight_decay=cfg.weight_decay, grad_clip=None, shuffle=False, seed=seed,
                     log_every=max(cfg.every, 100), progress=False, device="cpu")
    Trainer(model, task.train, None, tc, callbacks=list(callbacks)).fit()
    return model


def _fall_rate(steps: np.ndarray, norm: np.ndarray, start: float, end: float) -> float:
    """-(slope of ln norm per 1000 steps) over the records in [start, end]; NaN with fewer than two."""
    keep = (steps >= start) & (steps <= end)
    if keep.sum() < 2 or math.isnan(start) or math.isnan(end):
        return math.nan
    return float(-np.polyfit(steps[keep] / 1000.0, np.log(norm[keep]), 1)[0])


def snapshot(model: Transformer, step: int) -> dict[str, torch.Tensor]:
    """Every weight of the model: a `Recorder` custom measure, so progress measures can be taken afterwards."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def progress(cfg: Config, task: ModularAddition, seed: int, keys: list[int], snapshots: Path, out: Path,
             meta: dict[str, Any]) -> None:
    """Take `ProgressMeasures(task, keys)` on every recorded snapshot; write them (and the recorded training loss)
    as a new recording in `out`, one record at a time."""
    raw = load_trajectory(snapshots)
    model = make_model(cfg, task, seed)
    names = list(model.state_dict())
    weights = {name: raw[f"weights.{name}"] for name in names}
    measures = ProgressMeasures(task, key_freqs=keys)
    writer = TrajectoryWriter(out, meta=meta)
    for i, step in enumerate(np.asarray(raw.steps).tolist()):
        model.load_state_dict({name: weights[name][i] for name in names})
        record = {f"grokking.{k}": v for k, v in measures(model, step).items()}
        writer.append(step, {"loss": raw["loss"][i], **record})
    writer.close()


def measure(cfg: Config, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train one seed, recording its weights every `every` steps through the Recorder; find the final model's key
    frequencies; take the progress measures on every snapshot. The table row and the curves."""
    p, steps = cfg.resolved["p"], cfg.resolved["steps"]
    task = modular_addition(p, cfg.frac_train, seed=seed)
    tmp = Path(tempfile.mkdtemp(prefix="grokking-"))
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        recorder = Recorder(tmp / "weights", every=cfg.every, measures=("loss",), custom={"weights": snapshot})
        model = train(cfg, task, seed, callbacks=[recorder])
        train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
        spectrum = embedding_spectrum(model, p)
        keys = key_frequencies(spectrum, KEY_MASS)
        recording = Path(cfg.record_dir) / f"seed{seed}" if cfg.record_dir else tmp / "progress"
        meta = {"study": "dynamics.grokking", "seed": seed, "p": p, "frac_train": cfg.frac_train, "key_freqs": keys,
                "every": cfg.every, "model_config": model.cfg.to_dict(), "command": command_line()}
        progress(cfg, task, seed, keys, tmp / "weights", recording, meta)
        last = load_trajectory(tmp / "weights")
        record_diff = max((last[f"weights.{k}"][-1] - v).abs().max().item() for k, v in model.state_dict().items())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        traj = load_trajectory(recording)
        curves = {"step": np.asarray(traj.steps)}
        for name in ("train_loss", "test_loss", "train_acc", "test_acc", "restricted_loss", "excluded_loss",
                     "weight_norm", "key_share", "spectrum"):
            curves[name] = traj[f"grokking.{name}"].double().numpy()
        if cfg.ship and seed == cfg.seeds[0]:
            ship(cfg, model, task, keys, recording, seed, {"train_seconds": train_wall, "train_cpu_seconds": train_cpu})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s = curves["step"]
    phases = phase_boundaries(s, curves["train_acc"], curves["test_acc"], curves["test_loss"], p, acc=ACC)
    half_chance = math.log(p) / 2
    excluded = dict(zip(s.tolist(), curves["excluded_loss"].tolist()))
    return {
        "p": p, "steps": steps, "n_train": len(task.train),
        "key_freqs": " ".join(map(str, keys)), "n_key": len(keys),
        "key_share": float(spectrum[keys].sum() / spectrum[1:].sum()),
        "final_train_acc": curves["train_acc"][-1], "final_test_acc": curves["test_acc"][-1],
        "t_train_acc": first_step(s, curves["train_acc"] >= ACC),
        "t_test_acc": first_step(s, curves["test_acc"] >= ACC),
        "t_restricted_fall": first_step(s, curves["restricted_loss"] <= half_chance),
        "t_test_fall": first_step(s, curves["test_loss"] <= half_chance),
        "t_memorised": phases["memorised"], "t_cleanup": phases["cleanup"], "t_generalised": phases["generalised"],
        "excluded_at_memorised": excluded.get(phases["memorised"], math.nan),
        "excluded_at_cleanup": excluded.get(phases["cleanup"], math.nan),
        "norm_rate_circuit": _fall_rate(s, curves["weight_norm"], phases["memorised"], phases["cleanup"]),
        "norm_rate_cleanup": _fall_rate(s, curves["weight_norm"], phases["cleanup"], phases["generalised"]),
        "record_diff": record_diff, "train_cpu_s": train_cpu, "train_wall_s": train_wall, "cpu_s": cpu,
    }, curves


def ship(cfg: Config, model: Transformer, task: ModularAddition, keys: list[int], record_dir: Path,
         seed: int, cost: dict[str, float]) -> Path:
    """The grokked model (safetensors + JSON) with its recording under trajectory/, and the command in meta.json."""
    out = Path(cfg.ship)
    model.save(out, meta={"command": command_line(), "study": "dynamics.grokking", "seed": seed,
                          "study_config": dataclasses.asdict(cfg) | cfg.resolved,
                          "task": {"p": task.p, "frac_train": task.frac_train, "split_seed": task.seed},
                          "key_freqs": keys, **cost})
    shutil.copytree(record_dir, out / "trajectory", dirs_exist_ok=True)
    return out


def _seed_row(seed: int, cfg: Config) -> dict[str, Any]:
    """`measure` as one grid row, its curves carried in the `curves` column (importable for worker processes)."""
    row, curves = measure(cfg, seed)
    return {**row, "curves": curves}


def experiment(cfg: Config) -> Outcome:
    table = grid(functools.partial(_seed_row, cfg=cfg), [{}], cfg.seeds, desc="seeds", workers=cfg.workers)
    curves: dict[int, dict[str, np.ndarray]] = dict(zip(table["seed"].tolist(), table.pop("curves")))
    summary: dict[str, Any] = {"p": cfg.resolved["p"], "steps": cfg.resolved["steps"]}
    for _, r in table.iterrows():
        summary[f"seed {r.seed}: key frequencies"] = r.key_freqs
        summary[f"seed {r.seed}: phases (memorised, cleanup begins, generalised)"] = (
            f"{r.t_memorised:g}, {r.t_cleanup:g}, {r.t_generalised:g}")
        summary[f"seed {r.seed}: final train / test accuracy"] = f"{r.final_train_acc:.4f} / {r.final_test_acc:.4f}"
    summary["wall time per seed (s, mean)"] = float(table["wall_s"].mean())
    summary["CPU time per seed (s, mean)"] = float(table["cpu_s"].mean())
    summary["training alone per seed: wall / CPU (s, mean)"] = (
        f"{table['train_wall_s'].mean():.1f} / {table['train_cpu_s'].mean():.1f}")
    return Outcome(table, summary, {"curves": curves, "p": cfg.resolved["p"]})


# ---- verdicts -----------------------------------------------------------------------------------------------------
def _judge(claim: Claim, values: np.ndarray, rows: list[int]) -> Verdict:
    """`judge` on the seeds whose value exists; a missing value (an event that did not happen within the run)
    makes the verdict inconclusive."""
    values = np.asarray(values, dtype=float)
    present = np.isfinite(values)
    if not present.any():
        return Verdict(claim, "inconclusive", math.nan, -math.inf, math.inf, 0, "t", tuple(rows))
    verdict = judge(claim, values[present], rows)
    return verdict if present.all() else dataclasses.replace(verdict, outcome="inconclusive")


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    train, rows = column(table, "t_train_acc")
    test, _ = column(table, "t_test_acc")
    n_key, _ = column(table, "n_key")
    restricted, _ = column(table, "t_restricted_fall")
    test_fall, _ = column(table, "t_test_fall")
    excl_mem, _ = column(table, "excluded_at_memorised")
    excl_clean, _ = column(table, "excluded_at_cleanup")
    rate_circuit, _ = column(table, "norm_rate_circuit")
    rate_cleanup, _ = column(table, "norm_rate_cleanup")
    with np.errstate(divide="ignore", invalid="ignore"):
        delay = np.where(train > 0, (test - train) / train, np.nan)
        excluded = np.log(excl_clean / excl_mem)
    return [
        _judge(c["grokking"], delay, rows),
        _judge(c["sparse_embedding"], n_key, rows),
        _judge(c["restricted_first"], test_fall - restricted, rows),
        _judge(c["excluded_rises"], excluded, rows),
        _judge(c["norm_cleanup"], rate_cleanup - rate_circuit, rows),
    ]


# ---- figures ------------------------------------------------------------------------------------------------------
def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    curves, table, p = outcome.artifacts["curves"], outcome.table, outcome.artifacts["p"]
    seeds = sorted(curves)
    fig, axes = plt.subplots(3, len(seeds), figsize=(5 * len(seeds), 9), squeeze=False, sharex="col")
    for j, seed in enumerate(seeds):
        c, row = curves[seed], table[table.seed == seed].iloc[0]
        ax = axes[0, j]
        for name in ("train_loss", "test_loss", "restricted_loss", "excluded_loss"):
            ax.plot(c["step"], np.maximum(c[name], 1e-12), label=name.replace("_", " "))
        ax.axhline(math.log(p), color="grey", lw=0.8, ls=":", label="chance ln p")
        ax.set_yscale("log")
        keys = row.key_freqs if row.n_key <= 8 else f"{row.n_key} of them"
        ax.set_title(f"seed {seed}: key frequencies {keys}")
        axes[1, j].plot(c["step"], c["train_acc"], label="train acc")
        axes[1, j].plot(c["step"], c["test_acc"], label="test acc")
        axes[1, j].plot(c["step"], c["key_share"], label="key-frequency share of embedding")
        axes[2, j].plot(c["step"], c["weight_norm"], color="k", label="sum of squared weights")
        axes[2, j].set_xlabel("step")
        for ax in axes[:, j]:
            for t in (row.t_memorised, row.t_cleanup, row.t_generalised):
                if np.isfinite(t):
                    ax.axvline(t, color="tab:red", lw=0.8, ls="--")
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [out_dir / "curves.png"]
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(2, len(seeds), figsize=(5 * len(seeds), 6), squeeze=False)
    for j, seed in enumerate(seeds):
        c = curves[seed]
        share = c["spectrum"] / c["spectrum"].sum(1, keepdims=True)
        axes[0, j].imshow(share.T, aspect="auto", origin="lower", cmap="viridis",
                          extent=(c["step"][0], c["step"][-1], -0.5, share.shape[1] - 0.5))
        axes[0, j].set(xlabel="step", ylabel="frequency k (0 = constant)", title=f"seed {seed}: embedding power share")
        axes[1, j].bar(np.arange(share.shape[1]), share[-1])
        axes[1, j].set(xlabel="frequency k", ylabel="share of power", title="final embedding spectrum")
    fig.tight_layout()
    paths.append(out_dir / "spectrum.png")
    fig.savefig(paths[1], dpi=90)
    plt.close(fig)
    return paths


STUDY = Study(
    name="dynamics.grokking",
    title="Grokking modular addition and its progress measures (Nanda et al. 2023)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(p=13, steps=150, every=25, d_model=32, d_head=8, d_mlp=64, seeds=(0,)),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
