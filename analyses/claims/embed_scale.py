"""Multiplying token embeddings by sqrt(d_model) (003 #8; Vaswani et al. 2017 §3.4).

The seed says the factor sets the scale of the word vectors at initialisation to something reasonable and makes
early training stable. The reason it matters in the 2017 model: its embeddings start small (standard deviation
d_model^-1/2, so a token vector has norm about 1) while the sinusoidal position code added to them has norm
sqrt(d_model / 2); unscaled, position would dominate the token signal at the input. The paper also ties the input
embedding to the output projection, which wants small weights, so the factor lets one matrix serve both.

Two measurements. At initialisation (no training), for several widths: the norms of `hook_embed` (token) and
`hook_pos_embed` (sinusoidal position) per position, with and without the factor. After training: a character-level
decoder language model with sinusoidal positions, with and without the factor, with tied and with untied
embeddings, at the same size, steps and learning rate; held-out loss, and the position/token norm ratio at the end.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from analyses.claims._charlm import LMConfig, char_lm, evaluate, lm_model
from analyses.claims._kit import recipe, seed_bars
from analyses.claims._plot import save
from probe import Trainer, Transformer
from probe.study import Claim, Outcome, Study, Verdict, column, grid, judge, main, paired

SOURCE = "003 #8; Vaswani et al. 2017 §3.4-3.5"
CLAIMS = (
    Claim("positions_dominate_unscaled", "Without the factor, sinusoidal positions dominate the token signal at "
          "initialisation (at the paper's width)", SOURCE,
          "mean |position code| / mean |token embedding| at init, unscaled, d_model 512", ">", 1.0),
    Claim("scaled_tokens_not_drowned", "With the factor, the token signal is at least as large as the position code "
          "at initialisation (at the paper's width)", SOURCE,
          "mean |position code| / mean |token embedding| at init, scaled, d_model 512", "<", 1.0),
    Claim("scaling_helps_tied", "The factor gives a better model (tied input/output embeddings, as in the paper)",
          SOURCE, "held-out loss unscaled - scaled (nats), tied embeddings", ">", 0.0),
    Claim("scaling_helps_untied", "The factor gives a better model (separate input/output embeddings)", SOURCE,
          "held-out loss unscaled - scaled (nats), untied embeddings", ">", 0.0),
)


@dataclass(frozen=True)
class Config(LMConfig):
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)  # d_model at initialisation
    steps: int = 600
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # five: the effects under test are small next to seed noise


def norm_ratio(model: Transformer, tokens: torch.Tensor) -> tuple[float, float, float]:
    """(mean token-embedding norm, mean position-code norm, their ratio position / token) from the hooks."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=["hook_embed", "hook_pos_embed"])
    token = float(cache["hook_embed"].norm(dim=-1).mean())
    position = float(cache["hook_pos_embed"].norm(dim=-1).mean())
    return token, position, position / token


def at_init(cfg: Config, seed: int, tokens: torch.Tensor, vocab: int) -> list[dict]:
    rows = []
    for width in cfg.widths:
        for scaled in (False, True):
            model = lm_model(replace(cfg, d_model=width, n_layers=1, n_heads=1), vocab, seed, scale_embed=scaled,
                             positional_embedding_type="sinusoidal")
            token, position, ratio = norm_ratio(model, tokens)
            rows.append({"stage": "init", "d_model": width, "scaled": scaled, "tied": False, "seed": seed,
                         "token_norm": token, "position_norm": position, "ratio": ratio})
    return rows


def train_one(scaled: bool, tied: bool, seed: int, cfg: Config) -> dict:
    cpu = time.process_time()
    train, held_out, vocab = char_lm(cfg.n_ctx, n_sentences=cfg.n_sentences)
    model = lm_model(cfg, vocab, seed, positional_embedding_type="sinusoidal", scale_embed=scaled, tie_embed=tied)
    before = norm_ratio(model, held_out[:64])[2]
    tc = recipe(cfg, seed)
    Trainer(model, train, None, tc).fit()
    token, position, ratio = norm_ratio(model, held_out[:64])
    return {"stage": "trained", "d_model": cfg.d_model, "ratio_init": before, "token_norm": token,
            "position_norm": position, "ratio": ratio, **evaluate(model, held_out), "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    cpu = time.process_time()
    _, held_out, vocab = char_lm(cfg.n_ctx, n_sentences=cfg.n_sentences)
    init = pd.DataFrame([r for s in cfg.seeds for r in at_init(cfg, s, held_out[:64], vocab)])
    init["cpu_s"] = (time.process_time() - cpu) / len(init)
    variants = [{"scaled": s, "tied": t} for t in (True, False) for s in (False, True)]
    trained = grid(functools.partial(train_one, cfg=cfg), variants, cfg.seeds, desc="embed_scale",
                   workers=cfg.workers)
    table = pd.concat([init, trained], ignore_index=True)
    return Outcome(table, {"CPU seconds, all runs": float(table["cpu_s"].sum())})


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    c = {claim.id: claim for claim in CLAIMS}
    init = table[table["stage"] == "init"]
    trained = table[table["stage"] == "trained"]
    out = [judge(c["positions_dominate_unscaled"], *column(init, "ratio", d_model=512, scaled=False)),
           judge(c["scaled_tokens_not_drowned"], *column(init, "ratio", d_model=512, scaled=True))]
    for tied, name in ((True, "tied"), (False, "untied")):
        values, rows = paired(trained, "nll", {"scaled": False, "tied": tied}, {"scaled": True, "tied": tied})
        out.append(judge(c[f"scaling_helps_{name}"], values, rows))
    return out


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    init, trained = t[t["stage"] == "init"], t[t["stage"] == "trained"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for scaled, style in ((False, "o-"), (True, "s--")):
        g = init[init["scaled"] == scaled].groupby("d_model")["ratio"].mean()
        axes[0].plot(g.index, g.values, style, label="x sqrt(d_model)" if scaled else "unscaled")
    axes[0].axhline(1.0, color="gray", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="d_model", ylabel="|position| / |token| at init",
                title="Input signal at initialisation")
    axes[0].legend(fontsize=8)
    cases = [(True, False), (True, True), (False, False), (False, True)]
    samples = [trained[(trained["tied"] == tied) & (trained["scaled"] == scaled)]["nll"] for tied, scaled in cases]
    seed_bars(axes[1], range(4), samples, color=["C1" if scaled else "C0" for _, scaled in cases])
    labels = [f"{'tied' if tied else 'untied'}\n{'scaled' if scaled else 'unscaled'}" for tied, scaled in cases]
    lo = trained["nll"].min()
    axes[1].set(xticks=range(4), xticklabels=labels, ylabel="held-out loss (nats)", ylim=(lo * 0.9, None),
                title="After training")
    return save(fig, out / "embed_scale.png")


STUDY = Study(
    name="claims.embed_scale",
    title="Embedding scale: multiplying token embeddings by sqrt(d_model)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(widths=(16, 512), steps=10, d_model=16, n_heads=2, n_sentences=200, seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
