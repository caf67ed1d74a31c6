"""BERT masks input tokens, not attention (seed 003 #20; Devlin et al. 2019, sec. 3.1).

Seed 003 #20: BERT is trained with a masked language model, yet it puts no mask on attention: the mask is on the
input tokens, and the causal attention mask belongs to decoders, which must not see the future while generating. So
a masked-LM encoder should learn with its attention open in both directions and use the context on both sides of a
masked word.

Experiment. Two models of the same size train on the same masked-LM data (probe's offline corpus in windows, BERT's
masking: 15% of tokens picked, 80% of those replaced by [MASK], 10% by a random token, 10% kept; four static copies):
a bidirectional encoder with a token head, and the same network as a causal decoder (the attention mask of a
decoder, same objective). Same steps, batch size and learning rate for both. On held-out grammar text masked the
same way for both, measured: masked-token accuracy; the share of each query's attention (`hook_pattern`, averaged
over layers, heads and positions) that falls on keys to its right; and the encoder's accuracy when its future keys
are blocked at test time by setting their scores to minus infinity through `hook_attn_scores`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tokenizers import Tokenizer
from torch import Tensor

from analyses.claims import _plot, _text
from probe.data.mlm import mask_tokens, mlm_examples
from probe.data.text import SPECIALS, encode, generate_corpus, lm_dataset
from probe.models.transformer import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main, paired
from probe.train import DictDataset, TrainConfig, Trainer

SOURCE = "003 #20; Devlin et al. 2019 sec. 3.1"
CLAIMS = (
    Claim("bidirectional_patterns", "A masked-LM encoder keeps its attention bidirectional: a substantial share of "
          "each query's attention goes to later positions (uniform attention would put about half there).", SOURCE,
          "attention mass on keys right of the query, mean over layers, heads, queries (MLM encoder)", ">", 0.25),
    Claim("uses_right_context", "The masked-LM encoder uses the context to the right of a masked word: blocking its "
          "future keys at test time costs accuracy.", SOURCE,
          "masked-token accuracy (encoder) minus (encoder with future keys blocked)", ">", 0.0),
    Claim("beats_causal", "Masking inputs with open attention beats masking attention: the bidirectional encoder "
          "predicts masked tokens better than a causal decoder trained on the same masked-LM data.", SOURCE,
          "masked-token accuracy (bidirectional encoder) minus (causal decoder)", ">", 0.0),
)
ATTENTION = ("bidirectional", "causal")


@dataclass
class Config:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_ctx: int = 32
    vocab_size: int = 1000
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    copies: int = 4  # static masked copies of the training windows
    n_heldout: int = 400  # held-out grammar sentences for evaluation
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    workers: int = 2


def special_ids(tok: Tokenizer) -> list[int]:
    return [tok.token_to_id(s) for s in [*SPECIALS, _text.MASK]]


def model_config(cfg: Config, tok: Tokenizer, attention: str, seed: int) -> TransformerConfig:
    arch = {"bidirectional": dict(arch="encoder", head="token"), "causal": dict(arch="decoder")}[attention]
    return TransformerConfig(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_ctx=cfg.n_ctx,
                             d_vocab=tok.get_vocab_size(), seed=seed, **arch)


def heldout(cfg: Config, tok: Tokenizer) -> tuple[Tensor, Tensor]:
    """Held-out grammar text (seed 1) in windows, masked once with a fixed generator: (inputs, labels)."""
    windows = lm_dataset(encode(tok, generate_corpus(cfg.n_heldout, seed=1)), cfg.n_ctx).tensors["tokens"]
    return mask_tokens(windows, tok.token_to_id(_text.MASK), tok.get_vocab_size(), special_ids(tok),
                       generator=torch.Generator().manual_seed(12345))


def block_future(scores: Tensor, hook) -> Tensor:
    """A hook on `hook_attn_scores` [batch head query_pos key_pos]: scores of keys after the query become -inf."""
    future = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).triu(1)
    return scores.masked_fill(future, float("-inf"))


def right_mass(pattern: Tensor) -> float:
    """Mean over batch, heads and queries of the attention mass on keys to the right of the query."""
    future = torch.ones(pattern.shape[-2:], dtype=torch.bool, device=pattern.device).triu(1)
    return float((pattern * future).sum(-1).mean())


def masked_accuracy(logits: Tensor, labels: Tensor) -> float:
    picked = labels != -100
    return float((logits.argmax(-1)[picked] == labels[picked]).float().mean())


def train_and_measure(attention: str, seed: int, cfg: Config, spec: str) -> dict:
    """Train one model on the masked corpus and measure it (`spec`: the tokenizer's JSON, shared by all runs)."""
    tok = _text.load(spec)
    windows = lm_dataset(_text.corpus_ids(spec), cfg.n_ctx).tensors["tokens"]
    data = DictDataset(**mlm_examples(windows, tok.token_to_id(_text.MASK), tok.get_vocab_size(), special_ids(tok),
                                      copies=cfg.copies, seed=seed))
    model = Transformer(model_config(cfg, tok, attention, seed))
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, progress=False,
                     log_every=cfg.steps)
    trainer = Trainer(model, data, None, tc)
    trainer.fit()
    inputs, labels = heldout(cfg, tok)
    model.eval()
    with torch.no_grad():
        logits, cache = model.run_with_cache(inputs, names_filter=lambda n: n.endswith("hook_pattern"))
        blocked = model.run_with_hooks(inputs, fwd_hooks=[(lambda n: n.endswith("hook_attn_scores"), block_future)])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    masses = [right_mass(cache[f"blocks.{layer}.attn.hook_pattern"]) for layer in range(cfg.n_layers)]
    return {"masked_acc": masked_accuracy(logits, labels), "masked_loss": float(loss),
            "blocked_acc": masked_accuracy(blocked, labels), "right_mass": sum(masses) / len(masses),
            "uniform_right_mass": (cfg.n_ctx - 1) / (2 * cfg.n_ctx), "train_loss": trainer.last_loss}


def experiment(cfg: Config) -> Outcome:
    spec = _text.train(cfg.vocab_size)  # once: every process must number the tokens alike
    table = grid(functools.partial(train_and_measure, cfg=cfg, spec=spec), [{"attention": a} for a in ATTENTION],
                 cfg.seeds, desc="mlm", workers=cfg.workers)
    summary = {f"masked-token accuracy, {a} (mean over seeds)": float(g["masked_acc"].mean())
               for a, g in table.groupby("attention")}
    summary["attention mass right of the query under uniform attention"] = (cfg.n_ctx - 1) / (2 * cfg.n_ctx)
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    enc = {"attention": "bidirectional"}
    mass, rows = column(table, "right_mass", **enc)
    used, used_rows = column(table, "masked_acc", **enc)
    blocked, _ = column(table, "blocked_acc", **enc)
    return [judge(c["bidirectional_patterns"], mass, rows),
            judge(c["uses_right_context"], used - blocked, used_rows),
            judge(c["beats_causal"], *paired(table, "masked_acc", enc, {"attention": "causal"}))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    labels = ["encoder", "encoder,\nfuture blocked", "causal decoder"]
    values = [t[t.attention == "bidirectional"]["masked_acc"], t[t.attention == "bidirectional"]["blocked_acc"],
              t[t.attention == "causal"]["masked_acc"]]
    axes[0].bar(labels, [v.mean() for v in values], yerr=[v.std() for v in values], capsize=4,
                color=["C0", "C1", "C2"])
    axes[0].set(ylabel="masked-token accuracy", title="held-out masked LM (mean ± sd over seeds)")
    mass = [t[t.attention == a]["right_mass"] for a in ATTENTION]
    axes[1].bar(["encoder", "causal decoder"], [m.mean() for m in mass], yerr=[m.std() for m in mass], capsize=4,
                color=["C0", "C2"])
    axes[1].axhline(t["uniform_right_mass"].iloc[0], color="grey", ls="--", label="uniform attention")
    axes[1].set(ylabel="attention mass right of the query", title="where queries look")
    axes[1].legend(fontsize=8)
    return _plot.save(fig, out / "mlm.png")


STUDY = Study(
    name="claims.mlm",
    title="BERT masks input tokens, not attention (seed 003 #20)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(d_model=16, n_layers=1, n_heads=2, steps=8, copies=1, n_heldout=40, seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
