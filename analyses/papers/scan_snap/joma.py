"""JoMA (Tian et al. 2023, arXiv 2310.00535): with a nonlinear MLP the attention entropy first falls (sparse, salient
tokens) and then rises again (denser: less salient tokens join); with a linear MLP it only falls. As in JoMA's
Wikitext experiments: one-layer `probe.Transformer` decoders (attention then MLP, the block JoMA integrates) that
differ only in `act_fn` ("relu" vs "linear"), trained by `probe.Trainer` with SGD (momentum, clipped gradients) on
the same text (`probe.data.text`, offline corpus, character level) with the same seeds; the layer's attention entropy
is read through `hook_pattern` on a fixed validation batch over training. Per run: fall = start - minimum and rise =
end - minimum of the entropy curve, with end the mean of its last three records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from analyses.papers.scan_snap._text import TextTraining, train_text
from probe.study import Claim, Outcome, Study, grid, judge, main, not_measured, per_seed

SOURCE = "Tian et al. 2023, JoMA (arXiv 2310.00535)"
BOUND = 0.1  # nats
CLAIMS = (
    Claim("relu_falls", "With a ReLU MLP the attention entropy first falls", SOURCE,
          "fall (start - minimum, nats) of the ReLU model's attention entropy", ">", BOUND),
    Claim("relu_rises", "With a ReLU MLP the attention entropy then rises again", SOURCE,
          "rise (end - minimum, nats) of the ReLU model's attention entropy", ">", BOUND),
    Claim("linear_no_rise", "With a linear MLP the attention entropy does not rise again", SOURCE,
          "rise (end - minimum, nats) of the linear-MLP model's attention entropy", "<", BOUND),
    Claim("finite", "Every run stays finite (no NaN/inf loss or entropy)", "a precondition of the other claims",
          "number of runs whose loss or entropy became NaN/inf", "<=", 0.0),
)
TAIL = 3  # records averaged into the curve's end


@dataclass(frozen=True)
class Config(TextTraining):
    steps: int = 2000
    acts: tuple[str, ...] = ("relu", "linear")
    lr: float = 1.0


def fall_rise(curve: list[float], tail: int = TAIL) -> dict:
    """start, min (and its record index), end (mean of the last `tail` records), fall = start - min and
    rise = end - min."""
    i_min = min(range(len(curve)), key=curve.__getitem__)
    end = sum(curve[-tail:]) / min(tail, len(curve))
    return {"start": curve[0], "min": curve[i_min], "min_index": i_min, "end": end, "fall": curve[0] - curve[i_min],
            "rise": end - curve[i_min]}


def run_one(act: str, seed: int, cfg: Config) -> dict:
    rec = train_text(1, cfg.lr, seed, cfg, act_fn=act)
    diverged = rec["diverged_at"] is not None
    curve = rec["entropy"][0]
    stats = dict.fromkeys(fall_rise([0.0]), math.nan) if diverged else fall_rise(curve)
    return {**stats, "min_step": math.nan if diverged else rec["step"][stats["min_index"]], "diverged": diverged,
            "diverged_at": rec["diverged_at"], "val_loss": rec["val_loss"],
            "curve": {"step": rec["step"], "entropy": curve}}


def experiment(cfg: Config) -> Outcome:
    for act in ("relu", "linear"):
        if act not in cfg.acts:
            raise ValueError(f"acts={cfg.acts} must include {act!r}: the claims compare 'relu' with 'linear'")
    table = grid(partial(run_one, cfg=cfg), [{"act": a} for a in cfg.acts], cfg.seeds, desc="joma")
    return Outcome(table.drop(columns="curve"), artifacts={"curves": table})


def verdicts(table: pd.DataFrame) -> list:
    ok = table[~table["diverged"]]

    def on_finite_runs(claim: Claim, metric: str, act: str):
        if not (ok["act"] == act).any():  # every run of this model diverged
            return not_measured(claim, [int(i) for i in table.index[table["act"] == act]])
        return judge(claim, *per_seed(ok, metric, act=act))

    return [on_finite_runs(CLAIMS[0], "fall", "relu"), on_finite_runs(CLAIMS[1], "rise", "relu"),
            on_finite_runs(CLAIMS[2], "rise", "linear"),
            judge(CLAIMS[3], *per_seed(table, "diverged", "sum"), method="exact")]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import numpy as np

    t = outcome.artifacts["curves"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (act, g) in enumerate(t.groupby("act")):
        steps = g["curve"].iloc[0]["step"]
        for c in g["curve"]:
            ax.plot(c["step"], c["entropy"], color=f"C{i}", alpha=0.3, linewidth=0.8)
        ax.plot(steps, np.mean([c["entropy"] for c in g["curve"]], 0), color=f"C{i}",
                label=f"MLP act = {act} (thin: seeds, thick: mean)")
    ax.set(xlabel="SGD step", ylabel="attention entropy (validation, nats)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "joma_entropy.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.joma", title="JoMA: attention entropy with a nonlinear vs a linear MLP",
    claims=CLAIMS, config=Config(), quick=Config(steps=4, batch=2, n_ctx=16, d_model=16, records=4, seeds=(0,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
