"""Character-level language modelling on probe's generated English grammar (`probe.data.text.generate_corpus`),
shared by the training-recipe claims (embed_scale, warmup, optimizers, dropout, label_smoothing).

Training text and held-out text come from different seeds of the same grammar, so held-out loss measures
generalisation to new sentences of the same language. Data are built once per process (`functools.lru_cache`)
and shared by every run in it; `evaluate` scores every next-character prediction of a set of windows.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from probe import Transformer, TransformerConfig
from probe.data.text import encode, generate_corpus, train_tokenizer
from probe.ops.calibration import expected_calibration_error
from probe.train.batches import DictDataset

EVAL_SENTENCES = 400


@dataclass(frozen=True)
class LMConfig:
    """The model and budget the language-model studies share; each study's config extends it."""

    n_ctx: int = 32
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    steps: int = 800
    batch_size: int = 32
    lr: float = 1e-3  # with _kit.recipe: AdamW, warmup over 10% of the steps, cosine decay
    n_sentences: int = 2000  # training text; the held-out text is EVAL_SENTENCES of another seed
    seeds: tuple[int, ...] = (0, 1, 2)
    workers: int = 2


@functools.lru_cache(maxsize=2)
def _texts(n_sentences: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    train_text = generate_corpus(n_sentences, seed=0)
    eval_text = generate_corpus(EVAL_SENTENCES, seed=1)
    tok = train_tokenizer("char", (train_text + eval_text).splitlines(keepends=True))
    return encode(tok, train_text), encode(tok, eval_text), tok.get_vocab_size()


def windows(ids: torch.Tensor, n_ctx: int, limit: int | None = None) -> torch.Tensor:
    """Non-overlapping windows [n, n_ctx] of a token stream (the first `limit` of them)."""
    n = len(ids) // n_ctx
    return ids[: n * n_ctx].view(n, n_ctx)[:limit].clone()


@functools.lru_cache(maxsize=4)
def char_lm(n_ctx: int = 32, n_train_windows: int | None = None, n_sentences: int = 2000,
            ) -> tuple[DictDataset, torch.Tensor, int]:
    """(training windows, held-out windows, vocabulary size); `n_train_windows` keeps only the first ones (a small
    training set). Cached: every run of a process shares them."""
    train_ids, eval_ids, vocab = _texts(n_sentences)
    train = windows(train_ids, n_ctx, n_train_windows)
    if n_train_windows is not None and len(train) < n_train_windows:
        raise ValueError(f"n_train_windows={n_train_windows} but the corpus holds {len(train)} windows of {n_ctx}")
    return DictDataset(tokens=train), windows(eval_ids, n_ctx), vocab


def unigram_loss(train: DictDataset, held_out: torch.Tensor, vocab: int) -> float:
    """Held-out cross-entropy (nats) of the add-one unigram model of the training text: what a model that ignores
    the context reaches."""
    counts = torch.bincount(train.tensors["tokens"].flatten(), minlength=vocab).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(-logp[held_out[:, 1:].flatten()].mean())


def lm_model(cfg: LMConfig, vocab: int, seed: int, **fields) -> Transformer:
    """A decoder of `cfg`'s size over `vocab` characters; `fields` set any other TransformerConfig field."""
    return Transformer(TransformerConfig(arch="decoder", d_vocab=vocab, n_ctx=cfg.n_ctx, d_model=cfg.d_model,
                                         n_layers=cfg.n_layers, n_heads=cfg.n_heads, seed=seed, **fields))


@torch.no_grad()
def evaluate(model: Transformer, tokens: torch.Tensor, batch_size: int = 256, n_bins: int = 15) -> dict[str, float]:
    """Next-character NLL (nats), accuracy and expected calibration error over every position of `tokens`, in
    eval mode (dropout off)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(tokens[i : i + batch_size])[:, :-1] for i in range(0, len(tokens), batch_size)])
    model.train(was_training)
    logits, labels = logits.flatten(0, 1).double(), tokens[:, 1:].flatten()
    nll = float(torch.nn.functional.cross_entropy(logits, labels))
    return {"nll": nll, "accuracy": float((logits.argmax(-1) == labels).double().mean()),
            "ece": expected_calibration_error(logits, labels, n_bins), "perplexity": math.exp(nll)}
