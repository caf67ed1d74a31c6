"""Pretrain a language model, then fine-tune a classifier; gradual unfreezing (seed 002; Howard & Ruder 2018, ULMFiT).

Seed 002 retells ULMFiT: train a language model on a large corpus, fine-tune it on the task's text, then fine-tune
a classifier on the labelled data, "gradually unfreezing the layers to avoid catastrophic forgetting"; it adds that
Transformers usually skip gradual unfreezing and fine-tune every layer at once.

Experiment. A 2-layer causal Transformer language model is pretrained on probe's offline corpus (public-domain
passages and grammar sentences). The labelled task is derived from fresh grammar sentences: original word order
(label 1) or two different words swapped (label 0); both classes hold the same words, so only order separates them.
The classifier is the same decoder with a new linear head on its mean-pooled final states. Variants, at a small and
a large labelled training set: from scratch, or from the pretrained LM fine-tuned all at once, or from the
pretrained LM with gradual unfreezing (the head first, then one block more every stage, the embeddings last, all
layers training by half the budget). Every variant gets the same steps and batch size, and each picks its learning
rate from the same grid by accuracy on a labelled dev set; accuracy is then measured on a separate test set.
Forgetting is measured through the weights: the fine-tuned body under the pretrained LM head, its language-model
loss on held-out text minus the pretrained model's. ULMFiT's discriminative learning rates and slanted triangular
schedule are not used (constant rate, AdamW): the claim tested is about unfreezing.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _plot, _text
from probe.data.text import encode, generate_corpus, lm_dataset
from probe.models.transformer import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, grid, judge, main, paired
from probe.train import DictDataset, TrainConfig, Trainer
from probe.train.finetune import GradualUnfreezing, layer_groups, load_body

SOURCE = "002 (ULMFiT); Howard & Ruder 2018"
CLAIMS = (
    Claim("pretraining_wins_small", "With little labelled data, a classifier fine-tuned from a pretrained language "
          "model beats the same classifier trained from scratch.", SOURCE,
          "test accuracy (pretrained, all at once) minus (scratch), smallest labelled set", ">", 0.0),
    Claim("pretraining_wins_large", "With the largest labelled set tried, pretraining still beats training from "
          "scratch (the condition under which the small-data claim is tested further).", SOURCE,
          "test accuracy (pretrained, all at once) minus (scratch), largest labelled set", ">", 0.0),
    Claim("gradual_forgets_less", "Gradual unfreezing forgets less of the pretrained language model than fine-tuning "
          "every layer at once, at the same learning rate.", SOURCE + " sec. 3.3",
          "LM-loss increase (all at once) minus (gradual) at equal rates, mean over the rate grid, smallest "
          "labelled set [nats]", ">", 0.0),
    Claim("gradual_forgets_less_tuned", "Gradual unfreezing forgets less than fine-tuning every layer at once when "
          "each picks its learning rate on the dev set (the practical comparison).", SOURCE + " sec. 3.3",
          "LM-loss increase (all at once) minus (gradual) at the dev-chosen rates, smallest labelled set [nats]",
          ">", 0.0),
    Claim("all_at_once_suffices", "Transformers usually skip gradual unfreezing: fine-tuning all layers at once "
          "loses nothing in accuracy (gradual unfreezing gains under 2 points).", "002",
          "test accuracy (gradual) minus (all at once), smallest labelled set", "<", 0.02),
)
VARIANTS = (("scratch", "all"), ("pretrained", "all"), ("pretrained", "gradual"))


@dataclass
class Config:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_ctx: int = 32
    vocab_size: int = 1000
    pretrain_steps: int = 600
    pretrain_lr: float = 1e-3
    finetune_steps: int = 300
    batch_size: int = 16
    sizes: tuple[int, ...] = (64, 1024)  # labelled training sets
    n_dev: int = 256
    n_test: int = 1024
    n_heldout: int = 300  # held-out grammar sentences for the forgetting measurement
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    workers: int = 2


def lm_config(cfg: Config, tok: str, **kw) -> TransformerConfig:
    return TransformerConfig(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_ctx=cfg.n_ctx,
                             d_vocab=_text.load(tok).get_vocab_size(), **kw)


def heldout(cfg: Config, tok: str) -> DictDataset:
    """Held-out grammar text (seed 1, unseen in pretraining) in LM windows."""
    return lm_dataset(encode(_text.load(tok), generate_corpus(cfg.n_heldout, seed=1)), cfg.n_ctx)


@torch.no_grad()
def lm_loss(model: Transformer, data: DictDataset) -> float:
    model.eval()
    return float(model(data.tensors["tokens"], return_type="loss"))


@torch.no_grad()
def accuracy(model: Transformer, data: dict[str, torch.Tensor]) -> float:
    model.eval()
    logits = model(data["tokens"], attention_mask=data["attention_mask"])
    return float((logits.argmax(-1) == data["labels"]).float().mean())


def pretrain(cfg: Config, tok: str, lm_dir: str, seed: int) -> dict:
    """Pretrain the LM of `seed` and save its weights to lm_dir (`tok`: the tokenizer's JSON, shared by all runs)."""
    from safetensors.torch import save_file

    model = Transformer(lm_config(cfg, tok, seed=seed))
    data = lm_dataset(_text.corpus_ids(tok), cfg.n_ctx)
    Trainer(model, data, None, TrainConfig(steps=cfg.pretrain_steps, batch_size=32, lr=cfg.pretrain_lr, seed=seed,
                                           progress=False, log_every=cfg.pretrain_steps)).fit()
    save_file(model.state_dict(), str(Path(lm_dir) / f"lm-{seed}.safetensors"))
    return {"heldout_lm_loss": lm_loss(model, heldout(cfg, tok))}


def splits(cfg: Config, tok: str, seed: int) -> tuple[dict, dict, dict]:
    """(train, dev, test) labelled sentences of seed `seed`: the largest training set, then dev, then test."""
    n_train = max(cfg.sizes)
    data = _text.word_order_task(n_train + cfg.n_dev + cfg.n_test, 1000 + seed, tok, cfg.n_ctx)
    cut = lambda a, b: {k: v[a:b] for k, v in data.items()}  # noqa: E731
    return cut(0, n_train), cut(n_train, n_train + cfg.n_dev), cut(n_train + cfg.n_dev, None)


def finetune(init: str, unfreeze: str, n_train: int, seed: int, cfg: Config, tok: str, lm_dir: str) -> list[dict]:
    """Fine-tune one variant at every learning rate of the grid; one row per rate."""
    from safetensors.torch import load_file

    train, dev, test = splits(cfg, tok, seed)
    train = DictDataset(**{k: v[:n_train] for k, v in train.items()})
    lm = Transformer(lm_config(cfg, tok))
    lm.load_state_dict(load_file(str(Path(lm_dir) / f"lm-{seed}.safetensors")))
    text = heldout(cfg, tok)
    before = lm_loss(lm, text)
    rows = []
    for lr in cfg.lrs:
        model = Transformer(lm_config(cfg, tok, head="classifier", pool="mean", d_vocab_out=2, seed=seed))
        if init == "pretrained":
            load_body(model, lm)
        callbacks = []
        if unfreeze == "gradual":
            groups = layer_groups(model)
            callbacks = [GradualUnfreezing(groups, every=max(1, cfg.finetune_steps // (2 * (len(groups) - 1))))]
        tc = TrainConfig(steps=cfg.finetune_steps, batch_size=min(cfg.batch_size, n_train), lr=lr, seed=seed,
                         progress=False, log_every=cfg.finetune_steps)
        Trainer(model, train, None, tc, callbacks=callbacks).fit()
        row = {"lr": lr, "dev_acc": accuracy(model, dev), "test_acc": accuracy(model, test),
               "lm_loss_after": float("nan"), "forgetting": float("nan")}
        if init == "pretrained":  # the fine-tuned body under the pretrained LM head
            probe_lm = copy.deepcopy(lm)
            load_body(probe_lm, model)
            row["lm_loss_after"] = lm_loss(probe_lm, text)
            row["forgetting"] = row["lm_loss_after"] - before
        rows.append(row)
    return rows


def experiment(cfg: Config) -> Outcome:
    tok = _text.train(cfg.vocab_size)  # once: every process must number the tokens alike
    with tempfile.TemporaryDirectory(prefix="pretrain_finetune-") as lm_dir:
        lms = grid(functools.partial(pretrain, cfg, tok, lm_dir), [{}], cfg.seeds, desc="pretrain",
                   workers=cfg.workers)
        variants = [{"init": i, "unfreeze": u, "n_train": n} for n in cfg.sizes for i, u in VARIANTS]
        table = grid(functools.partial(finetune, cfg=cfg, tok=tok, lm_dir=lm_dir), variants, cfg.seeds,
                     desc="fine-tune", workers=cfg.workers)
    best = chosen(table)
    summary = {"pretrained LM held-out loss (mean over seeds) [nats]": float(lms["heldout_lm_loss"].mean()),
               "pretraining wall time, all seeds [s]": float(lms["wall_s"].sum())}
    for (i, u, n), acc in best.groupby(["init", "unfreeze", "n_train"])["test_acc"].mean().items():
        summary[f"test accuracy, {i} / {u}, n_train={n} (mean over seeds)"] = float(acc)
    return Outcome(table, summary, {"chosen": best})


def chosen(table: pd.DataFrame) -> pd.DataFrame:
    """For each (variant, size, seed) the row of the learning rate with the best dev accuracy (the smaller rate
    on a tie); the table's index is kept."""
    keys = ["init", "unfreeze", "n_train", "seed"]
    ordered = table.sort_values(keys + ["lr"], kind="stable")
    return ordered.loc[ordered.groupby(keys, sort=False)["dev_acc"].idxmax()]


def verdicts(table: pd.DataFrame) -> list:
    best = chosen(table)
    small, large = best["n_train"].min(), best["n_train"].max()

    def diff(metric: str, a: tuple[str, str], b: tuple[str, str], n: int) -> tuple:
        """Per-seed metric(a) - metric(b) at the chosen rates; rows: every rate of both (the choice used them)."""
        values, _ = paired(best, metric, {"init": a[0], "unfreeze": a[1], "n_train": n},
                           {"init": b[0], "unfreeze": b[1], "n_train": n})
        used = [(r.init, r.unfreeze) in (a, b) and r.n_train == n for r in table.itertuples()]
        return values, [int(i) for i in table.index[used]]

    pre, scratch, grad = ("pretrained", "all"), ("scratch", "all"), ("pretrained", "gradual")
    at_small = table[(table["init"] == "pretrained") & (table["n_train"] == small)]
    per_rate = at_small.pivot_table(index=["seed", "lr"], columns="unfreeze", values="forgetting")
    matched = (per_rate["all"] - per_rate["gradual"]).groupby(level="seed").mean()
    c = {claim.id: claim for claim in CLAIMS}
    return [judge(c["pretraining_wins_small"], *diff("test_acc", pre, scratch, small)),
            judge(c["pretraining_wins_large"], *diff("test_acc", pre, scratch, large)),
            judge(c["gradual_forgets_less"], matched.to_numpy(), [int(i) for i in at_small.index]),
            judge(c["gradual_forgets_less_tuned"], *diff("forgetting", pre, grad, small)),
            judge(c["all_at_once_suffices"], *diff("test_acc", grad, pre, small))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    best = outcome.artifacts["chosen"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (i, u), g in best.groupby(["init", "unfreeze"]):
        stats = g.groupby("n_train")["test_acc"].agg(["mean", "std"])
        axes[0].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                         label=f"{i}, {u}")
        if i == "pretrained":
            f = g.groupby("n_train")["forgetting"].agg(["mean", "std"])
            axes[1].errorbar(f.index, f["mean"], yerr=f["std"].fillna(0), marker="o", capsize=3, label=u)
    axes[0].set(xscale="log", xlabel="labelled training examples", ylabel="test accuracy",
                title="word-order classification (mean ± sd over seeds)")
    axes[1].set(xscale="log", xlabel="labelled training examples", ylabel="LM loss increase [nats]",
                title="forgetting of the pretrained LM")
    sizes = sorted(best["n_train"].unique())
    for ax in axes:
        ax.set_xticks(sizes, [str(n) for n in sizes], minor=False)
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _plot.save(fig, out / "pretrain_finetune.png")


STUDY = Study(
    name="claims.pretrain_finetune",
    title="Pretraining then fine-tuning, and gradual unfreezing (ULMFiT, seed 002)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(d_model=16, n_layers=1, n_heads=2, pretrain_steps=10, finetune_steps=8, sizes=(8, 16), n_dev=16,
                 n_test=16, n_heldout=20, lrs=(1e-3,), seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
