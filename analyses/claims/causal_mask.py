"""The decoder's causal mask keeps it from seeing the future.

Seeds 001 §13.2 and 003 #16 say the decoder's masked self-attention stops position i from seeing the words after it,
so that training and prediction match and no information leaks: a decoder trained without the mask can read the
token it is asked to predict, its teacher-forced loss collapses, and it cannot generate, because at generation time
the future is not there to read.

2-block decoders are trained with their causal mask and without it (`causal_mask=False`: every position attends to
every other) at equal steps, learning rate, batches and seeds, under two conditions. "reverse": tokens [x_1..x_n,
SEP, x_n..x_1], scored on the reversed half, whose every token the past already determines, so reading the future is
a shortcut but not the only solution. "text": character-level language modelling on the offline corpus, where the
next character is uncertain given the past, so reading it is the only way to a loss near zero.

Measured on held-out sequences: the teacher-forced loss (all positions at once, as in training); what generation
sees, the prediction of each token from the past alone (for "reverse", greedy free-running generation from [x_1..x_n,
SEP], scored token by token against the reversal; for "text", the next-character accuracy when the model is run on
each prefix, so no later token is present); and through `hook_pattern`, the attention the scored positions put on
later positions (the head with the most). The unmasked model is re-run on the whole prefix at every step of
generation, since its earlier positions would see later ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main, paired

SOURCE = "001 §13.2; 003 #16"
TASKS = ("reverse", "text")


def _claims(task: str) -> tuple[Claim, ...]:
    where = "the reversed half" if task == "reverse" else "the next character"
    return (
        Claim(f"{task}_teacher_forced_loss_collapses", f"Without the mask, the teacher-forced loss collapses ({task})",
              SOURCE, f"teacher-forced held-out loss of {where}, no causal mask (nats)", "<", 0.1),
        Claim(f"{task}_looks_ahead", f"Without the mask, the decoder reads the future ({task})", SOURCE,
              "attention the scored positions put on later positions, no causal mask, the head with the most",
              ">", 0.5),
        Claim(f"{task}_generation_fails", f"Without the mask, predicting from the past alone fails where the masked "
              f"decoder succeeds ({task})", SOURCE, f"accuracy of {where} from the past alone (free running), "
              "masked - unmasked", ">", 0.25),
    )


CLAIMS = _claims("reverse") + _claims("text")


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    n_symbols: int = 10  # reverse
    half: int = 8  # reverse
    text_len: int = 32  # text
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 8192
    n_eval: int = 256
    workers: int = 2


@torch.no_grad()
def look_ahead(model: Transformer, tokens: torch.Tensor, scored: slice) -> float:
    """Largest over heads (all blocks) of the mean attention that the `scored` query positions put on later keys."""
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    later = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).triu(1)
    best = 0.0
    for name in names:
        mass = (cache[name] * later).sum(-1)[:, :, scored]  # [batch head scored_query]
        best = max(best, float(mass.mean((0, 2)).max()))
    return best


@torch.no_grad()
def free_running_accuracy(model: Transformer, tokens: torch.Tensor, half: int) -> float:
    """Greedy generation of the reversed half from [x, SEP], token accuracy against the reversal."""
    out = model.generate(tokens[:, : half + 1], max_new_tokens=half, use_cache=model.cfg.causal_mask)
    return float((out[:, half + 1 :] == tokens[:, half + 1 :]).float().mean())


@torch.no_grad()
def past_only_accuracy(model: Transformer, tokens: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of each position's prediction when the model sees only tokens up to it (one run per prefix)."""
    right = [model(tokens[:, : t + 1])[:, t].argmax(-1) == labels[:, t] for t in range(tokens.shape[1])]
    return float(torch.stack(right, 1)[labels != -100].float().mean())


def _task(task: str, n: int, split: str, cfg_kw: dict):
    """Training (seed 1) or held-out (seed 2) examples of `task`; text held-out windows come from held-out text."""
    seed = 1 if split == "train" else 2
    if task == "reverse":
        return _arch.reverse_lm(n, cfg_kw["n_symbols"], cfg_kw["half"], seed)
    return _arch.text_windows(n, cfg_kw["text_len"], cfg_kw["text_len"], seed, split)


def run(task: str, masked: bool, n_layers: int, d_model: int, n_heads: int, steps: int, lr: float, batch_size: int,
        n_train: int, n_eval: int, cfg_kw: dict, seed: int) -> dict:
    cpu = time.process_time()
    if task == "reverse":
        vocab, n_ctx = cfg_kw["n_symbols"] + 1, 2 * cfg_kw["half"] + 1
    else:
        vocab, n_ctx = _arch.corpus()[1], cfg_kw["text_len"]
    model = Transformer(TransformerConfig(arch="decoder", n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                                          d_vocab=vocab, n_ctx=n_ctx, causal_mask=masked, seed=seed))
    held_out = _task(task, n_eval, "eval", cfg_kw)
    _, diverged = _arch.fit(model, _task(task, n_train, "train", cfg_kw), None, steps, lr, seed, batch_size,
                            warmup=max(1, steps // 20), schedule="cosine")
    if diverged:
        raise RuntimeError(f"task={task} masked={masked} seed={seed}: the loss became non-finite")
    loss, acc = _arch.loss_and_accuracy(model, held_out, n_eval)
    model.eval()
    tokens, labels = held_out.tensors["tokens"], held_out.tensors["labels"]
    if task == "reverse":
        half = cfg_kw["half"]
        past, scored = free_running_accuracy(model, tokens, half), slice(half, 2 * half)
    else:
        past, scored = past_only_accuracy(model, tokens[:64], labels[:64]), slice(0, tokens.shape[1] - 1)
    return {"teacher_forced_loss": loss, "teacher_forced_accuracy": acc, "past_only_accuracy": past,
            "look_ahead": look_ahead(model, tokens[:64], scored), "cpu_s": time.process_time() - cpu}


def experiment(cfg: Config) -> Outcome:
    cfg_kw = dict(n_symbols=cfg.n_symbols, half=cfg.half, text_len=cfg.text_len)
    variants = [dict(task=t, masked=m, n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
                     steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, n_train=cfg.n_train, n_eval=cfg.n_eval,
                     cfg_kw=cfg_kw) for t in TASKS for m in (True, False)]
    table = grid(run, variants, cfg.seeds, desc="causal_mask", workers=cfg.workers).drop(columns=["cfg_kw"])
    summary = {}
    for (task, masked), rows in table.groupby(["task", "masked"]):
        name = f"{task}, {'masked' if masked else 'unmasked'} (mean over seeds)"
        summary[f"teacher-forced accuracy, {name}"] = rows["teacher_forced_accuracy"].mean()
        summary[f"accuracy from the past alone, {name}"] = rows["past_only_accuracy"].mean()
    summary["CPU seconds (all workers)"] = table["cpu_s"].sum()
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    out = []
    for task in TASKS:
        out += [
            judge(c[f"{task}_teacher_forced_loss_collapses"], *column(table, "teacher_forced_loss", task=task,
                                                                      masked=False)),
            judge(c[f"{task}_looks_ahead"], *column(table, "look_ahead", task=task, masked=False)),
            judge(c[f"{task}_generation_fails"], *paired(table, "past_only_accuracy", {"task": task, "masked": True},
                                                         {"task": task, "masked": False})),
        ]
    return out


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    fig, axes = plt.subplots(1, len(TASKS), figsize=(5 * len(TASKS), 3.6))
    for ax, task in zip(axes, TASKS):
        rows = table[table["task"] == task]
        for i, (col, label) in enumerate((("teacher_forced_accuracy", "teacher forced"),
                                          ("past_only_accuracy", "from the past alone"))):
            means = [rows[rows["masked"] == m][col].mean() for m in (True, False)]
            ax.bar([j + 0.4 * (i - 0.5) for j in range(2)], means, width=0.4, label=label)
        ax.set_xticks(range(2), ["with causal mask", "without"])
        ax.set(ylabel="token accuracy", ylim=(0, 1.02), title=task)
        ax.legend()
    return _arch.save_figure(fig, out_dir, "causal_mask")


STUDY = Study(
    name="claims.causal_mask",
    title="A decoder with and without its causal mask: teacher-forced loss vs predicting from the past alone",
    claims=CLAIMS,
    config=Config(),
    quick=Config(seeds=(0,), d_model=16, n_heads=2, half=4, text_len=8, steps=5, batch_size=8, n_train=64,
                 n_eval=16, workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
