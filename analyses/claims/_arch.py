"""Shared pieces of the claims lab's architecture studies (the seeds' "Normalisation, residuals, depth" and
"Attention" claims): the tasks, one training recipe through `probe.Trainer`, and the measurements.

Tasks (each a `DictDataset` whose batches are `probe.Transformer` keyword arguments):
- `text_windows`: character-level language modelling on the shipped offline corpus (`probe.data.text`), windows of
  mixed lengths padded on the right (`attention_mask`, padded labels -100): sequences of varying length, the case
  the seeds argue about (001 §15);
- `two_tokens`: label_t = f(x_0, x_{t-1}) for a fixed random table f, a task whose single layer needs two attention
  patterns at once (the first token and the previous one: 001 §12, 003 #1);
- `previous_token`: a bidirectional encoder labels each position with the token before it, an asymmetric pattern
  (003 #2);
- `reverse_lm`: [x_1..x_n, SEP, x_n..x_1] for a decoder, scored on the reversed half (001 §13, 003 #16);
- associative recall from `probe.data.synthetic` for the attention-scoring studies.

Data are built once per process (cached), so a sweep over seeds re-trains models but never re-builds data.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from analyses.claims._plot import save
from probe import TrainConfig, Trainer, Transformer
from probe.train.batches import DictDataset
from probe.train.trainer import NonFiniteLossError

PAD = 0


# ---- data ------------------------------------------------------------------------------------------------------
@functools.cache
def corpus() -> tuple[Tensor, int]:
    """The builtin offline corpus as character ids (id 0 is padding) and the vocabulary size."""
    from probe.data.text import encode, load_corpus, train_tokenizer

    text = load_corpus("builtin")
    tok = train_tokenizer("char", text.splitlines(keepends=True))
    return encode(tok, text), tok.get_vocab_size()


@functools.cache
def text_windows(n: int, min_len: int, max_len: int, seed: int, split: str = "train") -> DictDataset:
    """`n` windows of the corpus, lengths uniform in [min_len, max_len], right-padded to max_len: `tokens`,
    `attention_mask` (1 on real tokens) and `labels` (the next character; -100 on padding). "train" windows come
    from the first 90% of the corpus, "eval" windows from the rest."""
    if split not in ("train", "eval"):
        raise ValueError(f"split={split!r} is not 'train' or 'eval'")
    if not 2 <= min_len <= max_len:
        raise ValueError(f"need 2 <= min_len <= max_len, got {min_len}, {max_len}")
    ids, _ = corpus()
    cut = int(0.9 * len(ids))
    stream = ids[:cut] if split == "train" else ids[cut:]
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    starts = torch.randint(0, len(stream) - max_len - 1, (n,), generator=g)
    windows = stream[starts[:, None] + torch.arange(max_len + 1)]
    real = torch.arange(max_len)[None] < lengths[:, None]
    tokens = windows[:, :-1].masked_fill(~real, PAD)
    labels = windows[:, 1:].masked_fill(~real, -100)
    return DictDataset(tokens=tokens, attention_mask=real.long(), labels=labels)


@functools.cache
def two_tokens(n: int, n_symbols: int, length: int, seed: int, table_seed: int = 0) -> DictDataset:
    """Decoder task: random symbols x_0..x_{T-1}; position t >= 2 is labelled f(x_0, x_{t-1}) with f a fixed random
    table [n_symbols, n_symbols] -> symbols (seeded by `table_seed`, shared by train and eval sets)."""
    table = torch.randint(0, n_symbols, (n_symbols, n_symbols), generator=torch.Generator().manual_seed(table_seed))
    x = torch.randint(0, n_symbols, (n, length), generator=torch.Generator().manual_seed(seed))
    labels = torch.full_like(x, -100)
    labels[:, 2:] = table[x[:, :1], x[:, 1:-1]]
    return DictDataset(tokens=x, labels=labels)


@functools.cache
def previous_token(n: int, n_symbols: int, length: int, seed: int) -> DictDataset:
    """Encoder task: random symbols; position t >= 1 is labelled x_{t-1} (position 0 is not scored)."""
    x = torch.randint(0, n_symbols, (n, length), generator=torch.Generator().manual_seed(seed))
    labels = torch.full_like(x, -100)
    labels[:, 1:] = x[:, :-1]
    return DictDataset(tokens=x, labels=labels)


@functools.cache
def reverse_lm(n: int, n_symbols: int, half: int, seed: int) -> DictDataset:
    """Decoder task: tokens = [x_1..x_n, SEP, x_n..x_1] (symbols 1..n_symbols, SEP = 0); labels score the
    next-token predictions of the reversed half (positions n..2n-1 predict x_n..x_1), everything else -100."""
    x = torch.randint(1, n_symbols + 1, (n, half), generator=torch.Generator().manual_seed(seed))
    tokens = torch.cat([x, torch.zeros(n, 1, dtype=torch.long), x.flip(1)], 1)
    labels = torch.full_like(tokens, -100)
    labels[:, half : 2 * half] = tokens[:, half + 1 :]
    return DictDataset(tokens=tokens, labels=labels)


@functools.cache
def recall(n: int, n_keys: int, n_values: int, n_pairs: int, seed: int) -> DictDataset:
    from probe.data.synthetic import associative_recall

    return associative_recall(n, n_keys=n_keys, n_values=n_values, n_pairs=n_pairs, seed=seed)


# ---- training ----------------------------------------------------------------------------------------------------
def fit(model: Transformer, train: DictDataset, eval_data: DictDataset | None, steps: int, lr: float,
        seed: int, batch_size: int = 32, warmup: int = 0, schedule: str = "constant",
        grad_clip: float | None = 1.0, log_every: int = 0, eval_batches: int = 8,
        callbacks: Sequence = ()) -> tuple[Trainer, bool]:
    """Train with Adam(W) (betas 0.9, 0.98 as Vaswani et al. 2017 and the seed's optimizer table, 000), the same
    recipe for every variant; returns the trainer and whether the loss became non-finite (then training stopped)."""
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, betas=(0.9, 0.98), schedule=schedule,
                      warmup_steps=warmup, grad_clip=grad_clip, seed=seed, progress=False,
                      log_every=log_every or steps, eval_batches=eval_batches, device="cpu")
    trainer = Trainer(model, train, eval_data, cfg, callbacks=callbacks)
    try:
        trainer.fit()
    except NonFiniteLossError:
        return trainer, True
    return trainer, False


def batch_of(data: DictDataset, n: int, offset: int = 0) -> dict[str, Tensor]:
    """The first `n` examples (from `offset`) as one batch."""
    return data[torch.arange(offset, offset + n)]


@torch.no_grad()
def loss_and_accuracy(model: Transformer, data: DictDataset, n: int = 512) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over the scored positions of the first `n` examples (model in eval mode)."""
    was = model.training
    model.eval()
    batch = batch_of(data, min(n, len(data)))
    logits = model(**{k: v for k, v in batch.items() if k != "labels"})
    model.train(was)
    return cross_entropy(logits, batch["labels"]), accuracy(logits, batch["labels"])


def cross_entropy(logits: Float[Tensor, "batch pos vocab"], labels: Int[Tensor, "batch pos"]) -> float:
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100).item()


def accuracy(logits: Float[Tensor, "batch pos vocab"], labels: Int[Tensor, "batch pos"]) -> float:
    """Fraction of scored positions (labels != -100) whose argmax is the label."""
    keep = labels != -100
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean().item()


# ---- measurements ----------------------------------------------------------------------------------------------
def block_grad_norms(model: Transformer, batch: dict[str, Tensor], params: Sequence[str]) -> list[float]:
    """The loss gradient's Frobenius norm over the named parameters of each block (e.g. ("mlp.W_in",
    "mlp.W_out")), block by block, from one backward pass on `batch`."""
    model.zero_grad(set_to_none=True)
    model(**batch, return_type="loss").backward()
    norms = []
    for block in model.blocks:
        grads = [block.get_parameter(name).grad for name in params]
        norms.append(math.sqrt(sum(float(g.double().square().sum()) for g in grads)))
    model.zero_grad(set_to_none=True)
    return norms


def log_growth(values: Sequence[float]) -> float:
    """exp of the least-squares slope of log(value) against depth scaled to [0, 1]: the factor by which the values
    grow from the first to the last layer along a log-linear fit (1 = flat)."""
    y = torch.tensor(values, dtype=torch.float64).log()
    x = torch.linspace(0.0, 1.0, len(values), dtype=torch.float64)
    slope = ((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).square().sum()
    return math.exp(float(slope))


def entropy(pattern: Float[Tensor, "batch head qpos kpos"]) -> Float[Tensor, "batch head qpos"]:
    """Shannon entropy (nats) of each query's attention distribution; zero weights contribute nothing."""
    return -(pattern * pattern.clamp_min(1e-30).log()).sum(-1)


def step_times(models: Sequence[Transformer], batch: dict[str, Tensor], repeats: int = 20,
               warmup: int = 3) -> list[float]:
    """Median seconds of one forward + backward of each model on `batch`, the models interleaved repeat by repeat
    so that a change of machine load hits all of them alike."""
    times: list[list[float]] = [[] for _ in models]
    for r in range(warmup + repeats):
        for i, model in enumerate(models):
            start = time.perf_counter()
            model(**batch, return_type="loss").backward()
            elapsed = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            if r >= warmup:
                times[i].append(elapsed)
    return [float(torch.tensor(t).median()) for t in times]


def first_step_below(losses: Sequence[tuple[int, float]], threshold: float, budget: int) -> int:
    """The first logged step whose training loss is below `threshold`; `budget` (the run's length) if none is:
    a run that never gets there is counted at the end of its budget (a lower bound on its true value)."""
    return next((step for step, loss in losses if loss < threshold), budget)


def logged_losses(trainer: Trainer) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in trainer.history if "loss" in r and "event" not in r]


def zero_hook(x: Tensor, hook) -> Tensor:
    """A forward hook that replaces the activation with zeros (an ablation)."""
    return torch.zeros_like(x)


def with_hooks(model: Transformer, hooks: Sequence[tuple[str, Callable]]) -> Transformer:
    """`model` with permanent forward hooks (an ablation that stays in place while the Trainer trains it)."""
    for name, fn in hooks:
        model.add_hook(name, fn, is_permanent=True)
    return model


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """`out_dir/name.png` through the claims' one figure writer (`_plot.save`)."""
    return save(fig, Path(out_dir) / f"{name}.png")
