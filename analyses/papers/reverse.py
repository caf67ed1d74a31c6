"""An encoder-decoder Transformer learns to reverse sequences (the encoder-decoder of Vaswani et al. 2017 §3 on the
sequence-reversal task, the toy form of Sutskever et al. 2014 §3.3, who reversed source sentences so that each
output word has its source word nearby).

Source: 4..8 symbols of 10 (padded, masked); target: the source reversed, then eos (`probe.data.synthetic.seq2seq
("reverse")`). A 2+2-layer model trains with teacher forcing through `probe.Trainer` and is scored by greedy decoding
(`model.generate`) on fresh sequences from the same generator with another seed.

Claims. The model reverses unseen sequences: the share of fresh sequences decoded exactly (every symbol and the
eos) is at least 0.95. It does so by looking up, at each output step, the source token it must emit: at output step
i of a length-L source that token sits at position L - 1 - i, and the decoder's cross-attention
(`decoder.L.cross_attn.hook_pattern`, mean over heads, teacher-forced on the fresh sequences) should peak there, an
anti-diagonal. Quantified per seed as the share of output steps (eos excluded) whose cross-attention peaks on that
source position, in the decoder layer where this share is highest; predicted above one half (a uniform guess over
4..8 positions hits about a sixth). Also reported, not judged: the same share for the best single head.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from probe import Transformer, TransformerConfig
from probe.data.synthetic import PAD, seq2seq, task_model_fields
from probe.interop.bridge import vocab_tokenizer
from probe.study import Claim, Outcome, Study, Verdict, command_line, grid, judge, main
from probe.train import TrainConfig, Trainer

SOURCES = "Vaswani et al. 2017 §3; Sutskever et al. 2014 §3.3"
CLAIMS = (
    Claim("reverses", "A small encoder-decoder trained with teacher forcing reverses unseen sequences", SOURCES,
          "exact-match accuracy of greedy decoding on fresh sequences", ">=", 0.95),
    Claim("cross_attention_aligned", "The decoder's cross-attention looks up the source token it emits next (an "
          "anti-diagonal)", "Vaswani et al. 2017 §3.2.3; Bahdanau et al. 2015 §3.1",
          "share of output steps whose cross-attention (mean over heads) peaks on the source token being emitted, "
          "best decoder layer", ">", 0.5),
)


@dataclass(frozen=True)
class Config:
    n_symbols: int = 10
    min_len: int = 4
    max_len: int = 8
    d_model: int = 64
    n_layers: int = 2  # encoder layers; the decoder has as many
    n_heads: int = 4
    steps: int = 400
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 30
    n_train: int = 20000
    n_eval: int = 512
    save: str | None = None  # also save the first seed's model as a checkpoint here (checkpoints/reverse_encdec)
    seeds: tuple[int, ...] = (0, 1, 2)


def names(n_symbols: int) -> list[str]:
    return ["<pad>", "<bos>", "<eos>", *(str(i) for i in range(n_symbols))]


def model_config(c: Config, seed: int) -> TransformerConfig:
    fields = task_model_fields("reverse", n_symbols=c.n_symbols, max_len=c.max_len)
    return TransformerConfig(d_model=c.d_model, n_layers=c.n_layers, n_heads=c.n_heads, seed=seed,
                             model_name="reverse-encdec", **fields)


def data(c: Config, n: int, seed: int):
    return seq2seq("reverse", n, n_symbols=c.n_symbols, min_len=c.min_len, max_len=c.max_len, seed=seed)


def train_config(c: Config, seed: int) -> TrainConfig:
    return TrainConfig(steps=c.steps, batch_size=c.batch_size, lr=c.lr, schedule="cosine", warmup_steps=c.warmup_steps,
                       seed=seed, log_every=max(1, c.steps // 50), progress=False)


@torch.no_grad()
def decode_accuracy(model: Transformer, batch: dict[str, Tensor]) -> tuple[float, float]:
    """(exact match, token accuracy) of greedy decoding against `labels` (the reversed source, then eos)."""
    model.eval()
    src, mask, labels = (batch[k].to(model.device) for k in ("src", "src_mask", "labels"))
    width = labels.shape[1]
    out = model.generate(src, max_new_tokens=width, src_mask=mask)[:, 1:]  # drop bos
    out = F.pad(out, (0, width - out.shape[1]), value=PAD)[:, :width]  # generation stops once all rows ended
    scored = labels != -100
    right = (out == labels) | ~scored
    return right.all(1).float().mean().item(), right[scored].float().mean().item()


def alignment(pattern: Float[Tensor, "batch head query key"], lengths: Int[Tensor, " batch"]) -> float:
    """The share of output steps i < L (L = the source length; eos excluded) whose attention, mean over heads, has
    its largest weight on source position L - 1 - i, the token emitted at step i of a reversal."""
    steps = torch.arange(pattern.shape[2], device=pattern.device)[None]
    scored = steps < lengths[:, None]
    aligned = (lengths[:, None] - 1 - steps).clamp(min=0)
    return ((pattern.mean(1).argmax(-1) == aligned) & scored).sum().item() / scored.sum().item()


@torch.no_grad()
def cross_attention_alignment(model: Transformer, batch: dict[str, Tensor]) -> tuple[list[float], float]:
    """`alignment` of every decoder layer's cross-attention (mean over heads), teacher-forced on `batch`, and the
    highest alignment of any single head."""
    model.eval()
    src, mask, tgt = (batch[k].to(model.device) for k in ("src", "src_mask", "tgt"))
    names_ = [f"decoder.{layer}.cross_attn.hook_pattern" for layer in range(model.cfg.n_decoder_layers)]
    _, cache = model.run_with_cache(src=src, tgt=tgt, src_mask=mask, names_filter=lambda n: n in names_)
    lengths = mask.sum(1)
    heads = [alignment(cache[n][:, h:h + 1], lengths) for n in names_ for h in range(model.cfg.n_heads)]
    return [alignment(cache[n], lengths) for n in names_], max(heads)


def train_and_score(c: Config, seed: int) -> tuple[dict, Transformer, list[tuple[int, float]]]:
    model = Transformer(model_config(c, seed), tokenizer=vocab_tokenizer(names=names(c.n_symbols)))
    trainer = Trainer(model, data(c, c.n_train, seed), None, train_config(c, seed))
    start = time.perf_counter()
    history = trainer.fit()
    train_s = time.perf_counter() - start
    fresh = data(c, c.n_eval, seed + 1_000)[:]  # another generator seed: sequences the model never saw
    exact, token = decode_accuracy(model, fresh)
    align, best_head = cross_attention_alignment(model, fresh)
    losses = [(r["step"], r["loss"]) for r in history if "loss" in r and "event" not in r]
    row = {"exact_match": exact, "token_accuracy": token, "final_train_loss": losses[-1][1], "train_s": train_s,
           **{f"aligned_layer_{i}": a for i, a in enumerate(align)}, "aligned_best_head": best_head}
    return row, model, losses


def save_checkpoint(model: Transformer, c: Config, seed: int, row: dict, path: str) -> Path:
    from probe.checkpoint import save

    analysis = {k: v for k, v in asdict(c).items() if k not in ("save", "seeds")}
    meta = {"command": command_line(), "analysis_config": analysis, "seed": seed,
            "train_config": train_config(c, seed).to_dict(), "step": c.steps, "train_seconds": round(row["train_s"], 1),
            "metrics": {k: v for k, v in row.items() if k != "train_s"},
            "task": {"name": "reverse", "generator": "probe.data.synthetic.seq2seq('reverse', n, n_symbols, min_len, "
                     "max_len, seed)", "n_symbols": c.n_symbols, "min_len": c.min_len, "max_len": c.max_len,
                     "format": "src: a random length in [min_len, max_len] of uniform symbols (ids 3..), padded "
                               "with 0 (src_mask 1 on real tokens); tgt = [bos=1, reversed source]; labels = "
                               "[reversed source, eos=2], -100 beyond", "n_train": c.n_train,
                     "evaluation": f"greedy decoding on {c.n_eval} sequences of generator seed {seed} + 1000"}}
    return save(model, path, meta=meta, tokenizer=model.tokenizer)


def experiment(cfg: Config) -> Outcome:
    kept: dict[int, tuple[Transformer, list]] = {}

    def one(seed: int) -> dict:
        row, model, losses = train_and_score(cfg, seed)
        kept[seed] = model, losses
        if cfg.save is not None and seed == cfg.seeds[0]:
            save_checkpoint(model, cfg, seed, row, cfg.save)
        return row

    table = grid(one, [{}], cfg.seeds, desc="reverse")
    first = cfg.seeds[0]
    return Outcome(table, {"mean exact match": table["exact_match"].mean(),
                           "mean token accuracy": table["token_accuracy"].mean()},
                   {"model": kept[first][0], "seed": first, "losses": {s: v[1] for s, v in kept.items()},
                    "example": data(cfg, 1, first + 1_000)[:1]})


def aligned_columns(table: pd.DataFrame) -> list[str]:
    cols = [c for c in table.columns if c.startswith("aligned_layer_")]
    if not cols:
        raise ValueError(f"the table has no aligned_layer_L columns; columns: {list(table.columns)}")
    return cols


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    t = table.sort_values("seed")
    rows = [int(i) for i in t.index]
    return [judge(CLAIMS[0], t["exact_match"].to_numpy(), rows),
            judge(CLAIMS[1], t[aligned_columns(t)].max(axis=1).to_numpy(), rows)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    a = outcome.artifacts
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for seed, losses in a["losses"].items():
        ax.plot(*zip(*losses), label=f"seed {seed}")
    ax.set(xlabel="step", ylabel="training loss", yscale="log", title="Training loss (teacher forcing)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths = [out / "loss_curve.png"]
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    model, ex = a["model"], a["example"]
    n = int(ex["src_mask"].sum())
    names_ = [f"decoder.{layer}.cross_attn.hook_pattern" for layer in range(model.cfg.n_decoder_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(src=ex["src"][:, :n].to(model.device), tgt=ex["tgt"][:, :n + 1].to(
            model.device), names_filter=lambda name: name in names_)
    tok = model.tokenizer
    fig, axes = plt.subplots(1, len(names_), figsize=(3.6 * len(names_), 3.8), squeeze=False)
    for layer, (ax, name) in enumerate(zip(axes[0], names_)):
        ax.imshow(cache[name][0].mean(0).cpu().numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), [tok.id_to_token(int(t)) for t in ex["src"][0, :n]])
        ax.set_yticks(range(n + 1), [tok.id_to_token(int(t)) for t in ex["tgt"][0, :n + 1]])
        ax.set(xlabel="source token", ylabel="decoder input", title=f"decoder layer {layer}")
    fig.suptitle(f"Cross-attention (mean over heads), seed {a['seed']}, one fresh sequence", fontsize=9)
    fig.tight_layout()
    paths.append(out / "cross_attention.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


STUDY = Study(name="papers.reverse", title="An encoder-decoder learns to reverse sequences", claims=CLAIMS,
              config=Config(), quick=Config(max_len=6, d_model=32, n_layers=1, steps=10, n_train=256, n_eval=64,
                                            seeds=(0,)),
              experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
