"""Learning-rate warmup for Adam (003 #19; 000's optimizer table: "inverse square root decay + warmup"; Xiong et al.
2020 for why Post-LN needs it more).

The seed says Transformers are trained with a warmup: the rate rises slowly at first, then decays. The testable
form: without warmup the largest learning rate at which training still works is lower, and more so for Post-LN
(the 2017 figure) than for Pre-LN (most code since).

One character-level decoder language model, Pre-LN and Post-LN, trained at each learning rate of a grid, with
and without warmup, the same steps for all. Adam has the paper's betas (0.9, 0.98) and eps 1e-9; warmup lasts
2 / (1 - beta2) steps (the untuned rule of Ma & Yarats 2021, the time Adam's second-moment average needs to settle);
both schedules then decay linearly to zero, so warmup is the only difference. No gradient clipping (it would hide
the instability under test). A run "trains" when its held-out loss ends below the midpoint between the unigram
loss (what a model ignoring context reaches) and the best loss any run of the same seed reached; the largest
learning rate that trains is read off the grid per (normalisation, warmup, seed). A run whose loss becomes
non-finite does not train.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analyses.claims._charlm import LMConfig, char_lm, evaluate, lm_model, unigram_loss
from analyses.claims._kit import recipe
from analyses.claims._plot import save
from probe import Trainer
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main
from probe.train.trainer import NonFiniteLossError

SOURCE = "003 #19; 000 optimizer table; Xiong et al. 2020"
CLAIMS = (
    Claim("warmup_raises_max_lr_post", "Without warmup the largest learning rate that trains is lower (Post-LN)",
          SOURCE, "log10(largest lr that trains with warmup / without), Post-LN", ">", 0.0),
    Claim("warmup_raises_max_lr_pre", "Without warmup the largest learning rate that trains is lower (Pre-LN)",
          SOURCE, "log10(largest lr that trains with warmup / without), Pre-LN", ">", 0.0),
    Claim("post_ln_needs_it_more", "Warmup matters more for Post-LN than for Pre-LN", "Xiong et al. 2020; 003 #19",
          "log10 max-lr gain from warmup, Post-LN - Pre-LN", ">", 0.0),
)
NORMS = ("pre", "post")


@dataclass(frozen=True)
class Config(LMConfig):
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    d_model: int = 32
    n_layers: int = 4
    steps: int = 400
    beta2: float = 0.98


def warmup_steps(cfg: Config) -> int:
    """2 / (1 - beta2) steps (Ma & Yarats 2021), at most half the run."""
    return min(cfg.steps // 2, round(2 / (1 - cfg.beta2)))


def run_one(norm: str, warmup: bool, lr: float, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    train, held_out, vocab = char_lm(cfg.n_ctx, n_sentences=cfg.n_sentences)
    model = lm_model(cfg, vocab, seed, norm_placement=norm)
    tc = recipe(cfg, seed, lr=lr, optimizer="adam", betas=(0.9, cfg.beta2), eps=1e-9, schedule="linear",
                warmup_steps=warmup_steps(cfg) if warmup else 0, grad_clip=None)
    try:
        Trainer(model, train, None, tc).fit()
        nll, finite = evaluate(model, held_out)["nll"], True
    except NonFiniteLossError:
        nll, finite = math.nan, False
    finite = finite and math.isfinite(nll)
    return {"nll": nll if finite else math.nan, "finite": finite,
            "unigram_loss": unigram_loss(train, held_out, vocab), "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    variants = [{"norm": n, "warmup": w, "lr": lr} for n in NORMS for w in (False, True) for lr in cfg.lrs]
    table = grid(functools.partial(run_one, cfg=cfg), variants, cfg.seeds, desc="warmup", workers=cfg.workers)
    return Outcome(table, {"warmup steps": warmup_steps(cfg), "CPU seconds, all runs": float(table["cpu_s"].sum())})


def trains(table: pd.DataFrame) -> pd.Series:
    """Per row: whether the run trained (finite held-out loss below the midpoint between the unigram loss and the
    best loss of any run with the same seed)."""
    best = table.groupby("seed")["nll"].transform("min")
    threshold = (table["unigram_loss"] + best) / 2
    return table["finite"].astype(bool) & (table["nll"] < threshold)


def max_lr(table: pd.DataFrame) -> pd.DataFrame:
    """log10 of the largest grid lr that trains, per (norm, warmup, seed); one grid step below the smallest lr when
    none trains. Columns norm, warmup, seed, log10_max_lr, rows (the table rows used)."""
    lrs = np.sort(table["lr"].unique())
    floor = np.log10(lrs[0]) - (np.log10(lrs[1]) - np.log10(lrs[0]) if len(lrs) > 1 else 1.0)
    ok = trains(table)
    out = []
    for (norm, warm, seed), g in table.groupby(["norm", "warmup", "seed"]):
        good = g["lr"][ok.loc[g.index]]
        out.append({"norm": norm, "warmup": bool(warm), "seed": seed,
                    "log10_max_lr": float(np.log10(good.max())) if len(good) else float(floor),
                    "rows": list(g.index)})
    return pd.DataFrame(out)


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    m = max_lr(table)
    gain, rows = {}, {}
    for norm in NORMS:
        w = m[(m["norm"] == norm) & m["warmup"]].set_index("seed")
        n = m[(m["norm"] == norm) & ~m["warmup"]].set_index("seed")
        seeds = sorted(set(w.index) & set(n.index))
        if not seeds:
            raise ValueError(f"no seed has runs with and without warmup for norm={norm!r}")
        gain[norm] = (w.loc[seeds, "log10_max_lr"] - n.loc[seeds, "log10_max_lr"]).to_numpy()
        rows[norm] = [r for s in seeds for r in w.loc[s, "rows"] + n.loc[s, "rows"]]
    return [judge(c["warmup_raises_max_lr_post"], gain["post"], rows["post"]),
            judge(c["warmup_raises_max_lr_pre"], gain["pre"], rows["pre"]),
            judge(c["post_ln_needs_it_more"], gain["post"] - gain["pre"], rows["post"] + rows["pre"])]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table.copy()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    cap = float(t["unigram_loss"].max()) * 1.5
    for ax, norm in zip(axes, NORMS):
        for warm, style in ((True, "o-"), (False, "s--")):
            g = t[(t["norm"] == norm) & (t["warmup"] == warm)]
            y = g["nll"].fillna(cap).clip(upper=cap)
            mean = y.groupby(g["lr"]).mean()
            ax.plot(mean.index, mean.values, style, label="warmup" if warm else "no warmup")
            ax.scatter(g["lr"], y, s=8, color="k", zorder=3)
        ax.axhline(float(t["unigram_loss"].mean()), color="gray", lw=0.8, ls=":", label="unigram loss")
        ax.set(xscale="log", xlabel="peak learning rate", title=f"{norm.capitalize()}-LN")
    axes[0].set_ylabel("held-out loss (nats; diverged drawn at the top)")
    axes[0].legend(fontsize=8)
    return save(fig, out / "warmup.png")


STUDY = Study(
    name="claims.warmup",
    title="Warmup: without it the largest learning rate that trains is lower (more so for Post-LN)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(lrs=(1e-3, 1e-1), steps=8, d_model=16, n_layers=2, n_heads=2, n_sentences=200, seeds=(0,),
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
